"""Fixtures: one kpl-sim process for the session, boto3 for reading back."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = {
    "aws_access_key_id": "AKIDLOCALTEST",
    "aws_secret_access_key": "local-test-secret",
}


def kpl_bin() -> str:
    if os.environ.get("KPL_BIN"):
        return os.environ["KPL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "kpl")


class Sim:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = boto3.client(
            "kinesis", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS
        )

    def config(self, stream: str, **extra: Any) -> Dict[str, Any]:
        """Producer settings for a stream of this simulator."""
        settings: Dict[str, Any] = {
            "stream_name": stream,
            "kinesis_endpoint": self.endpoint,
            # The simulator takes the producer's CloudWatch metrics too.
            "cloudwatch_endpoint": self.endpoint,
            "region": "us-east-1",
            "record_max_buffered_time": 20,
            **CREDENTIALS,
        }
        settings.update(extra)
        return settings

    def new_stream(self, shards: int = 2) -> str:
        name = f"py-{uuid.uuid4().hex[:12]}"
        self.client.create_stream(StreamName=name, ShardCount=shards)
        return name

    def faults(self, **faults: object) -> None:
        req = urllib.request.Request(
            self.endpoint + "/_sim/faults",
            data=json.dumps(faults).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    def cloudwatch(self) -> Dict[str, Any]:
        """The PutMetricData requests the simulator received."""
        with urllib.request.urlopen(self.endpoint + "/_sim/cloudwatch", timeout=5) as resp:
            body: Dict[str, Any] = json.loads(resp.read())
            return body

    def read_all(self, stream: str) -> List[Dict[str, Any]]:
        """Every Kinesis record of every shard (boto3 GetRecords dicts)."""
        out: List[Dict[str, Any]] = []
        shards = self.client.list_shards(StreamName=stream)["Shards"]
        for shard in shards:
            it = self.client.get_shard_iterator(
                StreamName=stream,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            while it:
                resp = self.client.get_records(ShardIterator=it, Limit=10000)
                out.extend(resp["Records"])
                if not resp["Records"]:
                    break
                it = resp.get("NextShardIterator")
        return out


@pytest.fixture(scope="session")
def sim() -> Iterator[Sim]:
    proc = subprocess.Popen(
        [kpl_bin(), "sim", "--port", "0", "--stream", "main:4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("kpl sim listening on "), first
        yield Sim(first.rsplit(" ", 1)[1])
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def slow_sim(sim: Sim) -> Iterator[Tuple[Sim, Any]]:
    """The simulator, with a setter for latency that is undone after the test."""

    def set_latency(ms: int) -> None:
        sim.faults(latency=ms)

    try:
        yield sim, set_latency
    finally:
        sim.faults(latency=0)
