"""Produce records from a script: `python examples/python/producer.py`.

Reads settings from the environment (KPL_STREAM, KPL_ENDPOINT, AWS_REGION,
AWS credentials from the default chain). Against the simulator:

    kpl sim --stream orders:4 &
    KPL_STREAM=orders KPL_ENDPOINT=http://127.0.0.1:4567 AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local python examples/python/producer.py
"""

from __future__ import annotations

import json
import os
import sys
from typing import List

import kpl


def main() -> int:
    settings = {
        "stream_name": os.environ.get("KPL_STREAM", "orders"),
        "region": os.environ.get("AWS_REGION", "us-east-1"),
        "kinesis_endpoint": os.environ.get("KPL_ENDPOINT"),  # None: the region's
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "record_max_buffered_time": 100,  # ms
    }
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with kpl.Producer(**settings) as producer:
        # One record, waiting for its result.
        first = producer.put("order-1", json.dumps({"id": 1, "total": 42}).encode())
        result = first.result(timeout=30)
        print(f"order-1 -> {result.shard_id} #{result.sequence_number}/{result.sub_sequence_number}")

        # Many records: the fast path. Each gets its own future.
        batch = [(f"customer-{i % 100}", json.dumps({"id": i}).encode()) for i in range(count)]
        futures: List[kpl.RecordFuture] = producer.put_many(batch)
        failed = 0
        for record, future in zip(batch, futures):
            error = future.exception(timeout=60)
            if error is not None:
                failed += 1
                print(f"{record[0]}: {error} after {len(error.attempts)} attempt(s)", file=sys.stderr)
        metrics = producer.metrics()
        print(
            f"{count - failed} of {count} delivered in {metrics['KinesisRecordsPut']} Kinesis records "
            f"({metrics['UserRecordsPerKinesisRecord']:.0f} per aggregate)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
