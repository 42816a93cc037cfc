"""kpl.deaggregate on boto3 and Lambda records."""

from __future__ import annotations

import base64

import kpl
from aws_kinesis_agg.aggregator import RecordAggregator


def _aggregate(records: list) -> bytes:  # type: ignore[type-arg]
    agg = RecordAggregator()
    for pk, ehk, data in records:
        assert agg.add_user_record(pk, data, ehk) is None
    out = agg.clear_and_get()
    assert out is not None
    _, _, blob = out.get_contents()
    assert isinstance(blob, bytes)
    return blob


def test_boto3_record() -> None:
    blob = _aggregate([("a", None, b"1"), ("b", "12345", b"2")])
    got = kpl.deaggregate({"PartitionKey": "a", "Data": blob, "SequenceNumber": "42"})
    assert [(u.partition_key, u.explicit_hash_key, u.data) for u in got] == [
        ("a", None, b"1"),
        ("b", "12345", b"2"),
    ]
    assert [u.sub_sequence_number for u in got] == [0, 1]
    assert all(u.aggregated and u.sequence_number == "42" for u in got)


def test_lambda_event_record() -> None:
    blob = _aggregate([("k", None, b"x" * 10), ("k2", None, b"y")])
    event_record = {
        "eventSource": "aws:kinesis",
        "kinesis": {
            "partitionKey": "k",
            "data": base64.b64encode(blob).decode(),
            "sequenceNumber": "7",
            "kinesisSchemaVersion": "1.0",
        },
    }
    got = kpl.deaggregate(event_record)
    assert [(u.partition_key, u.data, u.sequence_number) for u in got] == [
        ("k", b"x" * 10, "7"),
        ("k2", b"y", "7"),
    ]


def test_plain_record_passes_through() -> None:
    got = kpl.deaggregate({"PartitionKey": "p", "Data": b"plain", "SequenceNumber": "1"})
    assert len(got) == 1 and got[0].data == b"plain" and not got[0].aggregated
