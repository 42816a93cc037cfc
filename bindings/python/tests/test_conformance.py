"""The conformance cases (tests/conformance/cases.tsv, whose header says what
each line means) from Python, against kpl-sim. Rust, C and Node run the same
file and must see the same outcomes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import kpl
import pytest
from conftest import ROOT, Sim

CASES = ROOT / "tests" / "conformance" / "cases.tsv"


def cases() -> List[Tuple[int, List[str]]]:
    out = []
    for number, line in enumerate(Path(CASES).read_text(encoding="utf-8").splitlines(), 1):
        if line and not line.startswith("#"):
            out.append((number, line.split("\t")))
    return out


def value(field: str) -> Optional[str]:
    """``-`` is none; ``TEXT*N`` is TEXT repeated N times."""
    if field == "-":
        return None
    m = re.fullmatch(r"(.*)\*(\d+)", field, re.S)
    return m.group(1) * int(m.group(2)) if m else field


def error_outcome(e: kpl.KplError) -> str:
    if isinstance(e, kpl.UnknownSettingError) and e.suggestions:
        return f"UnknownSetting:{e.suggestions[0]}"
    return e.kind


def base(sim: Sim, stream: str, **extra: Any) -> Dict[str, Any]:
    return sim.config(stream, record_ttl=10000, metrics_level="none", **extra)


def run_set(name: str, text: str, want: str) -> str:
    try:
        config = kpl.check_config(**{name: text})
    except kpl.KplError as e:
        return error_outcome(e)
    kpl_name = want.split("=", 1)[0] if "=" in want else name
    return f"{kpl_name}={config.get(kpl_name, '')}"


def run_record(producer: kpl.Producer, key: str, data: str, ehk: Optional[str]) -> str:
    try:
        future = producer.put(key, data, explicit_hash_key=ehk)
    except kpl.KplError as e:
        return error_outcome(e)
    try:
        future.result(timeout=30)
        return "Delivered"
    except kpl.KplError as e:
        return f"Failed:{error_outcome(e)}"


def run_failed(sim: Sim, stream: str, key: str) -> str:
    with kpl.Producer(**base(sim, stream)) as producer:
        try:
            producer.put(key, b"x").result(timeout=30)
            return "Delivered"
        except kpl.KplError as e:
            return f"{error_outcome(e)}:{e.code or '-'}\t{e.stream or '-'}"


def run_order(sim: Sim, stream: str, n: int, buffered: str, aggregation: str) -> str:
    settings = base(
        sim,
        stream,
        strict_ordering="true",
        max_buffered_records=buffered,
        aggregation_enabled=aggregation,
    )
    with kpl.Producer(**settings) as producer:
        futures = producer.put_many([("k", str(i)) for i in range(n)])
        results = []
        for i, f in enumerate(futures):
            try:
                results.append(f.result(timeout=30))
            except kpl.KplError as e:
                return f"record {i} failed: {error_outcome(e)}"

    def at(r: kpl.PutResult) -> Tuple[int, str, int]:
        return (len(r.sequence_number), r.sequence_number, r.sub_sequence_number)

    for i in range(1, len(results)):
        if at(results[i - 1]) >= at(results[i]):
            return f"record {i} stored before record {i - 1}"
    return "in-order"


def test_every_case_has_its_outcome(sim: Sim) -> None:
    stream = sim.new_stream(shards=2)
    failures = []
    ran = 0
    with kpl.Producer(**base(sim, stream)) as main:
        for number, f in cases():
            kind = f[0]
            if kind == "set" and len(f) == 4:
                got, want = run_set(f[1], f[2], f[3]), f[3]
            elif kind == "record" and len(f) == 5:
                key, data = value(f[1]), value(f[2])
                assert key is not None and data is not None
                got, want = run_record(main, key, data, value(f[3])), f[4]
            elif kind == "failed" and len(f) == 5:
                got, want = run_failed(sim, f[1], f[2]), f"{f[3]}\t{f[4]}"
            elif kind == "order" and len(f) == 4:
                got, want = run_order(sim, stream, int(f[1]), f[2], f[3]), "in-order"
            else:
                pytest.fail(f"cases.tsv:{number}: cannot read {f!r}")
            ran += 1
            if got != want:
                failures.append(f"cases.tsv:{number}: {f!r}: got {got!r}")
    print(f"python conformance: {ran} cases, {len(failures)} failed")
    assert not failures, "\n".join(failures)
    assert ran >= 30
