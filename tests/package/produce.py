"""Installed-wheel check: produce to `kpl sim` with the `kpl` module and read back.

    KPL_BIN=dist/kpl python produce.py

Run by scripts/test.sh's `package` step in a fresh venv that holds only the
wheel from dist/ (no cargo on PATH). Reads the stream back over the
simulator's plain JSON API (stdlib only) and checks that every record
arrived once, with its key and data.
"""

import base64
import json
import os
import subprocess
import sys
import urllib.request

import kpl

STREAM = "wheel"
SHARDS = 2
RECORDS = 2000


def call(endpoint: str, action: str, body: dict) -> dict:
    request = urllib.request.Request(
        endpoint,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Kinesis_20131202." + action,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def read_back(endpoint: str) -> list:
    records = []
    for shard in range(SHARDS):
        iterator = call(
            endpoint,
            "GetShardIterator",
            {
                "StreamName": STREAM,
                "ShardId": f"shardId-{shard:012d}",
                "ShardIteratorType": "TRIM_HORIZON",
            },
        )["ShardIterator"]
        while iterator:
            page = call(endpoint, "GetRecords", {"ShardIterator": iterator, "Limit": 10000})
            for r in page["Records"]:
                records += kpl.deaggregate({"partitionKey": r["PartitionKey"], "data": r["Data"]})
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def main() -> int:
    sim = subprocess.Popen(
        [os.environ["KPL_BIN"], "sim", "--port", "0", "--stream", f"{STREAM}:{SHARDS}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        first = sim.stdout.readline().strip()
        if not first.startswith("kpl sim listening on "):
            print(f"kpl sim did not start: {first!r}", file=sys.stderr)
            return 1
        endpoint = first.rsplit(" ", 1)[1]
        sent = {f"rec-{i}".encode(): f"key-{i % 50}" for i in range(RECORDS)}
        with kpl.Producer(
            stream_name=STREAM,
            kinesis_endpoint=endpoint,
            region="us-east-1",
            aws_access_key_id="AKIDLOCALTEST",
            aws_secret_access_key="local-test-secret",
            record_max_buffered_time=20,
        ) as producer:
            futures = producer.put_many([(key, data) for data, key in sent.items()])
            results = [f.result(timeout=30) for f in futures]
        got = read_back(endpoint)
        seen = {r.data: r.partition_key for r in got}
        ok = len(got) == RECORDS and seen == sent and all(r.shard_id for r in results)
        aggregated = sum(1 for r in results if r.aggregated)
        print(
            f"wheel: kpl {kpl.__file__}: {len(results)} records put "
            f"({aggregated} aggregated), {len(got)} read back: {'ok' if ok else 'MISMATCH'}"
        )
        return 0 if ok else 1
    finally:
        sim.kill()
        sim.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
