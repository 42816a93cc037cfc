"""Every exception type, raised in a real situation."""

from __future__ import annotations

import hashlib
from typing import Any

import kpl
import pytest
import aws_kinesis_agg.aggregator  # noqa: F401  (puts its generated modules on sys.path)
from aws_kinesis_agg import messages_pb2 as kpl_pb2
from conftest import Sim


def test_hierarchy() -> None:
    for cls in (
        kpl.ConfigError,
        kpl.ValidationError,
        kpl.BufferFullError,
        kpl.ThrottledError,
        kpl.ExpiredError,
        kpl.ServiceError,
        kpl.TransportError,
        kpl.ShutDownError,
        kpl.CorruptRecordError,
        kpl.UnexpectedError,
    ):
        assert issubclass(cls, kpl.KplError)


def test_config_error(sim: Sim) -> None:
    with pytest.raises(kpl.ConfigError, match="CollectionMaxCount"):
        kpl.Producer(**sim.config("main", collection_max_count=900))
    with pytest.raises(kpl.ConfigError, match="unknown setting"):
        kpl.Producer(**sim.config("main", no_such_setting=1))


def test_unknown_setting_is_its_own_error_with_suggestions(sim: Sim) -> None:
    with pytest.raises(kpl.UnknownSettingError) as unknown:
        kpl.Producer(**sim.config("main", record_max_buffer_time=50))
    assert isinstance(unknown.value, kpl.ConfigError)  # caught as before
    assert unknown.value.kind == "UnknownSetting"
    assert unknown.value.setting == "record_max_buffer_time"
    assert unknown.value.suggestions == ["RecordMaxBufferedTime"]
    assert "did you mean RecordMaxBufferedTime" in str(unknown.value)
    # A bad value is a ConfigError but not an unknown name.
    with pytest.raises(kpl.ConfigError) as bad:
        kpl.check_config(record_ttl="soon")
    assert not isinstance(bad.value, kpl.UnknownSettingError)
    assert kpl.check_config(record_ttl=5000)["RecordTtl"] == "5000"


def test_validation_errors_carry_the_record(sim: Sim) -> None:
    with kpl.Producer(**sim.config("main")) as producer:
        with pytest.raises(kpl.ValidationError, match="0 characters") as empty:
            producer.put("", b"data")
        assert empty.value.partition_key == "" and empty.value.data == b"data"
        big = b"x" * (1024 * 1024 + 1)
        with pytest.raises(kpl.ValidationError, match="MaxUserRecordSize") as over:
            producer.put("k", big, stream="main")
        assert over.value.data == big and over.value.stream == "main"
        with pytest.raises(kpl.ValidationError):
            producer.put("k", b"x", explicit_hash_key="not-a-number")
        # put_many fails only the bad record's future.
        futs = producer.put_many([("ok", b"1"), ("", b"2"), ("ok", b"3")])
        assert isinstance(futs[1].exception(timeout=10), kpl.ValidationError)
        with pytest.raises(kpl.ValidationError):
            futs[1].result()
        assert futs[0].result(timeout=10) and futs[2].result(timeout=10)


def test_expired(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(1)
    with kpl.Producer(**sim.config(stream, record_ttl=100)) as producer:
        set_latency(1000)
        future = producer.put("ttl", b"late")
        error = future.exception(timeout=30)
    assert isinstance(error, kpl.ExpiredError), error
    assert error.partition_key == "ttl" and error.data == b"late"
    # Expired before its first request went out (the shard map was still
    # loading), so it may have no attempts yet: they are a list either way.
    assert isinstance(error.attempts, list)


def test_service_error_unknown_stream(sim: Sim) -> None:
    with kpl.Producer(**sim.config("no-such-stream")) as producer:
        error = producer.put("k", b"v").exception(timeout=30)
    assert isinstance(error, kpl.ServiceError), error
    assert error.code == "ResourceNotFoundException"
    assert error.stream == "no-such-stream" and error.partition_key == "k"


def test_shut_down(sim: Sim) -> None:
    producer = kpl.Producer(**sim.config("main"))
    producer.close()
    with pytest.raises(kpl.ShutDownError):
        producer.put("k", b"v")
    with pytest.raises(kpl.ShutDownError):
        producer.put_many([("k", b"v")])


def test_connection_failures_end_in_expired_with_their_attempts(sim: Sim) -> None:
    # Nothing listens on port 9. kpl-core retries connection failures
    # until RecordTtl, so the record fails as ExpiredError (not
    # TransportError), its attempts telling why.
    settings = sim.config("main", kinesis_endpoint="http://127.0.0.1:9", record_ttl=1500)
    with kpl.Producer(**settings) as producer:
        error = producer.put("k", b"v").exception(timeout=30)
    assert isinstance(error, kpl.ExpiredError), error
    assert error.attempts and error.attempts[-1].error_code == "ConnectionError"
    assert not error.attempts[-1].success


def test_buffer_full_async(slow_sim: Any) -> None:
    import asyncio

    sim, set_latency = slow_sim
    stream = sim.new_stream(1)

    async def main() -> None:
        async with kpl.AsyncProducer(**sim.config(stream, max_buffered_records=10)) as p:
            set_latency(300)
            for i in range(10):
                await p.put(f"k{i}", b"v")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(p.put("over", b"v"), 0.1)
            set_latency(0)

    asyncio.run(main())


def _aggregate(body: bytes) -> bytes:
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def test_corrupt_record() -> None:
    agg = kpl_pb2.AggregatedRecord()
    agg.partition_key_table.append("a")
    rec = agg.records.add()
    rec.partition_key_index = 7  # no such entry
    rec.data = b"x"
    record = {"PartitionKey": "a", "Data": _aggregate(agg.SerializeToString()), "SequenceNumber": "1"}
    with pytest.raises(kpl.CorruptRecordError):
        kpl.deaggregate(record)


def test_throttled(sim: Sim) -> None:
    # No aggregation, our own rate limit far above the shard's 1000
    # records/s, and no retries of throttled records.
    stream = sim.new_stream(1)
    settings = sim.config(
        stream, aggregation_enabled=False, fail_if_throttled=True, rate_limit=100_000
    )
    with kpl.Producer(**settings) as producer:
        futures = producer.put_many([(f"t{i}", b"x") for i in range(4000)])
        errors = [f.exception(timeout=60) for f in futures]
    throttled = [e for e in errors if e is not None]
    assert throttled, "the shard's limit was hit"
    assert all(isinstance(e, kpl.ThrottledError) for e in throttled), throttled[0]
    assert throttled[0].attempts[-1].error_code == "ProvisionedThroughputExceededException"
