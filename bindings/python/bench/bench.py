"""Throughput of kpl (put_many and single put) against aiokpl and
aws-kinesis-agg + boto3, on the same workload, against kpl-sim.

    python bindings/python/bench/bench.py [--records 200000] [--size 100]
        [--only many,put,async] [--runs 3] [--endpoint URL --stream NAME]

Starts `kpl sim --unlimited` (KPL_BIN, default <repo>/target/debug/kpl)
with one 4-shard stream per contestant. Build the extension in release
first (`maturin develop --release`); the peers come from
bench/requirements.txt (aiokpl pins its own botocore, so use a venv of
their own). Prints records/s per contestant.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import kpl

ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = {"aws_access_key_id": "AKIDLOCALTEST", "aws_secret_access_key": "local-test-secret"}
# The simulator runs without limits; so does every producer (percent of the
# per-shard limits; aiokpl gets the same below).
RATE_LIMIT = 1_000_000
STREAMS = ["ours-many", "ours-put", "ours-async", "aiokpl", "agg-boto3"]
# --stream NAME sends every contestant to one stream of a simulator
# started apart (--endpoint).
SHARED_STREAM: Optional[str] = None


def stream_for(name: str) -> str:
    return SHARED_STREAM or name


def kpl_bin() -> str:
    if os.environ.get("KPL_BIN"):
        return os.environ["KPL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "kpl")


def workload(n: int, size: int, keys: int) -> List[Tuple[str, bytes]]:
    body = b"x" * size
    return [(f"key-{i % keys}", body) for i in range(n)]


def ours_put_many(endpoint: str, records: List[Tuple[str, bytes]]) -> float:
    settings: Dict[str, Any] = dict(stream_name=stream_for("ours-many"), kinesis_endpoint=endpoint, region="us-east-1", rate_limit=RATE_LIMIT, **CREDENTIALS)
    with kpl.Producer(**settings) as producer:
        producer.put("warm-up", b"x").result()
        start = time.perf_counter()
        futures: List[kpl.RecordFuture] = []
        chunk = 10_000
        for i in range(0, len(records), chunk):
            futures.extend(producer.put_many(records[i : i + chunk]))
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - start
        assert producer.metrics()["UserRecordsFailed"] == 0
    return len(records) / elapsed


def ours_put(endpoint: str, records: List[Tuple[str, bytes]]) -> float:
    settings: Dict[str, Any] = dict(stream_name=stream_for("ours-put"), kinesis_endpoint=endpoint, region="us-east-1", rate_limit=RATE_LIMIT, **CREDENTIALS)
    with kpl.Producer(**settings) as producer:
        producer.put("warm-up", b"x").result()
        start = time.perf_counter()
        futures = [producer.put(k, d) for k, d in records]
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - start
        assert producer.metrics()["UserRecordsFailed"] == 0
    return len(records) / elapsed


def ours_async_put(endpoint: str, records: List[Tuple[str, bytes]]) -> float:
    """`await producer.put()` per record, the futures kept and awaited at the end."""
    settings: Dict[str, Any] = dict(stream_name=stream_for("ours-async"), kinesis_endpoint=endpoint, region="us-east-1", rate_limit=RATE_LIMIT, **CREDENTIALS)

    async def main() -> float:
        async with kpl.AsyncProducer(**settings) as producer:
            await (await producer.put("warm-up", b"x"))
            start = time.perf_counter()
            futures = [await producer.put(k, d) for k, d in records]
            for f in futures:
                await f
            elapsed = time.perf_counter() - start
            assert producer.metrics()["UserRecordsFailed"] == 0
        return len(records) / elapsed

    return asyncio.run(main())


def aiokpl_rate(endpoint: str, records: List[Tuple[str, bytes]]) -> float:
    import aiokpl

    config = aiokpl.Config(
        region="us-east-1",
        endpoint_url=endpoint,
        rate_limit_records_per_sec_per_shard=1e12,
        rate_limit_bytes_per_sec_per_shard=1e15,
        **CREDENTIALS,
    )

    async def main() -> float:
        async with aiokpl.Producer(config) as producer:
            await (await producer.put_record(stream=stream_for("aiokpl"), partition_key="w", data=b"x")).wait()
            start = time.perf_counter()
            outcomes = [
                await producer.put_record(stream=stream_for("aiokpl"), partition_key=k, data=d) for k, d in records
            ]
            await producer.flush()
            for o in outcomes:
                await o.wait()
            return len(records) / (time.perf_counter() - start)

    return asyncio.run(main())


def agg_boto3_rate(endpoint: str, records: List[Tuple[str, bytes]]) -> float:
    import boto3
    from aws_kinesis_agg.aggregator import RecordAggregator

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    start = time.perf_counter()
    batch: List[Dict[str, Any]] = []
    batch_bytes = 0

    def send() -> None:
        nonlocal batch, batch_bytes
        if batch:
            resp = client.put_records(StreamName=stream_for("agg-boto3"), Records=batch)
            assert resp["FailedRecordCount"] == 0
        batch, batch_bytes = [], 0

    def add(agg_record: Any) -> None:
        nonlocal batch_bytes
        pk, ehk, data = agg_record.get_contents()
        if len(batch) == 500 or batch_bytes + len(data) + len(pk) > 5 * 1024 * 1024:
            send()
        entry: Dict[str, Any] = {"PartitionKey": pk, "Data": data}
        if ehk is not None:
            entry["ExplicitHashKey"] = ehk
        batch.append(entry)
        batch_bytes += len(data) + len(pk)

    aggregator = RecordAggregator()
    for k, d in records:
        full = aggregator.add_user_record(k, d)
        if full is not None:
            add(full)
    last = aggregator.clear_and_get()
    if last is not None:
        add(last)
    send()
    return len(records) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--single-records", type=int, default=100_000, help="for put() and AsyncProducer.put()")
    parser.add_argument("--peer-records", type=int, default=20_000, help="for aiokpl, boto3")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--only", help="comma-separated: many,put,async,aiokpl,boto3")
    parser.add_argument("--runs", type=int, default=1, help="rounds, contestants alternating")
    parser.add_argument("--endpoint", help="a simulator started apart (else one is started)")
    parser.add_argument("--stream", help="with --endpoint: the stream every contestant uses")
    args = parser.parse_args()

    global SHARED_STREAM
    SHARED_STREAM = args.stream
    sim: Optional["subprocess.Popen[str]"] = None
    if args.endpoint is None:
        cmd = [kpl_bin(), "sim", "--port", "0", "--unlimited"]
        for s in STREAMS:
            cmd += ["--stream", f"{s}:4"]
        sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if sim is not None:
            assert sim.stdout is not None
            endpoint = sim.stdout.readline().strip().rsplit(" ", 1)[1]
        else:
            endpoint = args.endpoint
        contestants: List[Tuple[str, str, Callable[[str, List[Tuple[str, bytes]]], float], int]] = [
            ("many", "kpl put_many", ours_put_many, args.records),
            ("put", "kpl put", ours_put, args.single_records),
            ("async", "kpl AsyncProducer await put", ours_async_put, args.single_records),
        ]
        if not args.no_peers:
            contestants += [
                ("aiokpl", "aiokpl", aiokpl_rate, args.peer_records),
                ("boto3", "aws-kinesis-agg + boto3", agg_boto3_rate, args.peer_records),
            ]
        only = set(args.only.split(",")) if args.only else None
        runs = [(name, fn, n) for key, name, fn, n in contestants if only is None or key in only]
        runs = runs * args.runs
        rates: Dict[str, Optional[float]] = {}
        print(f"{args.size}-byte records, {args.keys} keys, kpl-sim --unlimited, 4 shards")
        for name, fn, n in runs:
            records = workload(n, args.size, args.keys)
            cpu = time.process_time()
            try:
                rate: Optional[float] = fn(endpoint, records)
            except ImportError as e:
                print(f"{name:>26}: skipped ({e})")
                rate = None
            else:
                # CPU per record too (the whole process, set-up included):
                # on a busy machine it varies less than the rate.
                per_record = (time.process_time() - cpu) / n * 1e6
                print(f"{name:>26}: {rate:>12,.0f} records/s  ({n:,} records, {per_record:.2f} CPU us/record)")
            if rate is not None:
                rates[name] = max(rate, rates.get(name) or 0.0)
            sys.stdout.flush()
        base = rates.get("kpl put_many")
        peer = rates.get("aiokpl")
        if base and peer:
            print(f"kpl put_many / aiokpl: {base / peer:,.0f}x")
        return 0
    finally:
        if sim is not None:
            sim.kill()
            sim.wait()


if __name__ == "__main__":
    sys.exit(main())
