"""Helpers for the interop tests: drive the `kpl` binary (KPL_BIN)."""

import base64
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def kpl_bin():
    path = os.environ.get("KPL_BIN") or str(ROOT / "target" / "debug" / "kpl")
    if not os.path.isabs(path):
        path = str(ROOT / path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"kpl binary not found at {path}: build it (cargo build -p kpl-cli) or set KPL_BIN")
    return path


def run_kpl(args, stdin_text):
    """Runs `kpl ARGS` with STDIN_TEXT; returns the completed process."""
    return subprocess.run(
        [kpl_bin(), *args],
        input=stdin_text.encode("utf-8"),
        capture_output=True,
        timeout=300,
        check=False,
    )


def kpl_agg(records, *args):
    """Aggregates user records (dicts with pk, data: bytes, ehk: str|None)
    with `kpl agg`; returns the Kinesis records it printed as dicts with
    PartitionKey, ExplicitHashKey (or None) and Data (bytes)."""
    lines = []
    for r in records:
        line = {"PartitionKey": r["pk"], "Data": base64.b64encode(r["data"]).decode("ascii")}
        if r.get("ehk") is not None:
            line["ExplicitHashKey"] = r["ehk"]
        lines.append(json.dumps(line))
    proc = run_kpl(["agg", *args], "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    out = []
    for line in proc.stdout.decode("utf-8").splitlines():
        obj = json.loads(line)
        out.append(
            {
                "PartitionKey": obj["PartitionKey"],
                "ExplicitHashKey": obj.get("ExplicitHashKey"),
                "Data": base64.b64decode(obj["Data"]),
            }
        )
    return out


def kpl_deagg(kinesis_records, *args):
    """Deaggregates Kinesis records (dicts with PartitionKey, ExplicitHashKey
    or None, Data: bytes, SequenceNumber) with `kpl deagg`; returns
    (exit code, user records as dicts with pk, ehk, data, seq, subseq, stderr)."""
    lines = []
    for r in kinesis_records:
        line = {
            "PartitionKey": r["PartitionKey"],
            "Data": base64.b64encode(r["Data"]).decode("ascii"),
            "SequenceNumber": r["SequenceNumber"],
        }
        if r.get("ExplicitHashKey") is not None:
            line["ExplicitHashKey"] = r["ExplicitHashKey"]
        lines.append(json.dumps(line))
    proc = run_kpl(["deagg", *args], "\n".join(lines) + "\n")
    out = []
    for line in proc.stdout.decode("utf-8").splitlines():
        obj = json.loads(line)
        out.append(
            {
                "pk": obj["PartitionKey"],
                "ehk": obj["ExplicitHashKey"],
                "data": base64.b64decode(obj["Data"]),
                "seq": obj["SequenceNumber"],
                "subseq": obj["SubSequenceNumber"],
            }
        )
    return proc.returncode, out, proc.stderr.decode("utf-8", "replace")
