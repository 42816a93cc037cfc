"""kpl: an in-process Kinesis producer, native in Rust (kpl-rs).

Aggregates many small records into one Kinesis record (the KPL's format),
collects them into PutRecords requests, rate-limits and retries per shard,
and reports a result for every record.

    import kpl

    with kpl.Producer(stream_name="orders", region="eu-west-1") as producer:
        future = producer.put("customer-17", b'{"total": 42}')
        print(future.result().shard_id)
"""

from ._deagg import UserRecord, deaggregate
from ._errors import (
    BufferFullError,
    DroppedError,
    SpoolError,
    SpoolFullError,
    ConfigError,
    CorruptRecordError,
    ExpiredError,
    KplError,
    ServiceError,
    ShutDownError,
    ThrottledError,
    TransportError,
    UnexpectedError,
    UnknownSettingError,
    ValidationError,
)
from ._kpl import Attempt, PutResult, RecordFuture
from ._producer import AsyncProducer, Data, Producer, RecordItem, check_config

__all__ = [
    "AsyncProducer",
    "Attempt",
    "BufferFullError",
    "DroppedError",
    "SpoolError",
    "SpoolFullError",
    "ConfigError",
    "CorruptRecordError",
    "Data",
    "ExpiredError",
    "KplError",
    "Producer",
    "PutResult",
    "RecordFuture",
    "RecordItem",
    "ServiceError",
    "ShutDownError",
    "ThrottledError",
    "TransportError",
    "UnexpectedError",
    "UnknownSettingError",
    "UserRecord",
    "ValidationError",
    "check_config",
    "deaggregate",
]
