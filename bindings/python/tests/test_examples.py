"""The examples in examples/python run against the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from conftest import CREDENTIALS, ROOT, Sim

EXAMPLES = ROOT / "examples" / "python"


def example_env(sim: Sim, stream: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        KPL_STREAM=stream,
        KPL_ENDPOINT=sim.endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
    )
    return env


def test_producer_example(sim: Sim) -> None:
    stream = sim.new_stream(2)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "producer.py"), "2000"],
        env=example_env(sim, stream),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2000 of 2000 delivered" in proc.stdout, proc.stdout


def test_web_handler_example(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = sim.new_stream(1)
    for name, value in example_env(sim, stream).items():
        monkeypatch.setenv(name, value)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import web_handler
    finally:
        sys.path.remove(str(EXAMPLES))

    async def request(port: int, key: str, body: bytes) -> Dict[str, object]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /events HTTP/1.1\r\nhost: x\r\nx-partition-key: {key}\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw
        result: Dict[str, object] = json.loads(payload)
        return result

    async def main() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server = asyncio.ensure_future(web_handler.serve(0, ready))
        port = await ready
        answers = await asyncio.gather(*(request(port, f"user-{i}", b"click") for i in range(20)))
        assert all(str(a["shard_id"]).startswith("shardId-") for a in answers)
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    got = [r["PartitionKey"] for r in sim.read_all(stream)]
    assert got, "the records arrived"
