"""The durable spool from Python: settings by name, records left by a
stopped producer sent first by the next, the lock, the error classes."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import List

import kpl
import pytest
from conftest import Sim


def dead_endpoint() -> str:
    """An endpoint nothing listens on: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_spool_keeps_what_a_stopped_producer_could_not_send(sim: Sim, tmp_path: Path) -> None:
    stream = sim.new_stream(1)
    spool = str(tmp_path / "spool")
    down = sim.config(
        stream,
        kinesis_endpoint=dead_endpoint(),
        spool_directory=spool,
        spool_sync="always",
        metrics_level="none",
    )
    first = kpl.Producer(**down)
    with pytest.raises(kpl.SpoolError, match="in use by another producer"):
        kpl.Producer(**down)
    futures = [first.put(f"k{i % 3}", f"{i:04}".encode()) for i in range(100)]
    assert not first.close(timeout=0.3), "nothing could be delivered"
    for f in futures:
        with pytest.raises(kpl.ShutDownError):
            f.result(timeout=5)

    with kpl.Producer(**sim.config(stream, spool_directory=spool, metrics_level="none")) as again:
        assert again.metrics()["SpoolRecordsRecovered"] == 100
        again.put("k0", b"new!").result(timeout=30)
        assert again.flush(timeout=30)
        assert again.metrics()["SpoolRecords"] == 0
    data: List[bytes] = []
    for r in sim.read_all(stream):
        data.extend(u.data for u in kpl.deaggregate(r))
    assert data == [f"{i:04}".encode() for i in range(100)] + [b"new!"]


def test_a_full_spool_refuses_with_spool_full_error(sim: Sim, tmp_path: Path) -> None:
    settings = sim.config(
        sim.new_stream(1),
        kinesis_endpoint=dead_endpoint(),
        spool_directory=str(tmp_path / "full"),
        spool_max_bytes=1 << 20,
        spool_full_policy="fail",
        max_user_record_size=65536,
        max_buffered_records=10,
        metrics_level="none",
    )
    with pytest.raises(kpl.ConfigError, match="SpoolFullPolicy"):
        kpl.Producer(**{**settings, "spool_full_policy": "sometimes"})
    producer = kpl.Producer(**settings)
    try:
        with pytest.raises(kpl.SpoolFullError) as caught:
            for i in range(200):
                producer.put("key", bytes(10_000))
        assert caught.value.data == bytes(10_000), "the record is handed back"
        assert 90 <= i <= 104
    finally:
        producer.close(timeout=0.1)
