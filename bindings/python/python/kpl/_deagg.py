"""kpl.deaggregate: user records out of a Kinesis record, as the KCL reads them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from . import _kpl


@dataclass(frozen=True)
class UserRecord:
    """A user record read back out of a Kinesis record."""

    partition_key: str
    explicit_hash_key: Optional[str]
    data: bytes
    sequence_number: Optional[str]
    sub_sequence_number: int
    aggregated: bool


def deaggregate(record: Mapping[str, Any]) -> List[UserRecord]:
    """The user records in one Kinesis record.

    Takes a boto3 GetRecords record (``PartitionKey``, ``Data`` bytes,
    ``SequenceNumber``, optional ``ExplicitHashKey``) or a Lambda Kinesis
    event record (``{"kinesis": {"partitionKey", "data" (base64),
    "sequenceNumber", ...}}``, or its ``kinesis`` part). A record that is
    not an aggregate comes back as one record with sub-sequence number 0.
    Raises CorruptRecordError for an aggregate whose contents are inconsistent.
    """
    if "kinesis" in record:
        record = record["kinesis"]
    if "PartitionKey" in record:
        key = record["PartitionKey"]
        data = record["Data"]
        seq = record.get("SequenceNumber")
        ehk = record.get("ExplicitHashKey")
    elif "partitionKey" in record:
        key = record["partitionKey"]
        data = base64.b64decode(record["data"])
        seq = record.get("sequenceNumber")
        ehk = record.get("explicitHashKey")
    else:
        raise TypeError(
            "deaggregate takes a boto3 GetRecords record or a Lambda Kinesis event record"
        )
    return [
        UserRecord(pk, ehk_, body, seq, sub, agg)
        for pk, ehk_, body, sub, agg in _kpl.deaggregate(key, ehk, data)
    ]
