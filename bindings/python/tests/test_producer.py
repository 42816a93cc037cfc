"""Records put from Python arrive intact; futures resolve once; sync and async."""

from __future__ import annotations

import asyncio
import base64
import collections
import threading
import time
from typing import Any, Counter, Dict, List, Tuple

import kpl
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from conftest import Sim

Key = Tuple[str, bytes]


def with_agg_lib(records: List[Dict[str, Any]]) -> Counter[Key]:
    """User records read back with the PyPI aws-kinesis-agg deaggregator."""
    out: Counter[Key] = collections.Counter()
    for r in records:
        for user in iter_deaggregate_records(dict(r), data_format="Boto3"):
            k = user["kinesis"]
            data = base64.b64decode(k["data"]) if k.get("aggregated") else k["data"]
            out[(k["partitionKey"], data)] += 1
    return out


def with_ours(records: List[Dict[str, Any]]) -> Counter[Key]:
    out: Counter[Key] = collections.Counter()
    for r in records:
        for user in kpl.deaggregate(r):
            assert user.sequence_number == r["SequenceNumber"]
            out[(user.partition_key, user.data)] += 1
    return out


def expected(items: List[Key]) -> Counter[Key]:
    return collections.Counter(items)


def test_sync_put_and_put_many_arrive_intact(sim: Sim) -> None:
    stream = sim.new_stream(4)
    single = [(f"single-{i}", f"payload {i} é".encode()) for i in range(50)]
    many = [(f"many-{i % 37}", bytes([i % 256]) * (i % 300 + 1)) for i in range(3000)]
    calls: Counter[int] = collections.Counter()
    lock = threading.Lock()

    def count(fut: Any) -> None:
        with lock:
            calls[id(fut)] += 1

    with kpl.Producer(**sim.config(stream)) as producer:
        futures = [producer.put(k, d) for k, d in single]
        for f in futures:
            f.add_done_callback(count)
        record_futures = producer.put_many(many)
        for rf in record_futures:
            rf.add_done_callback(count)
        results = [f.result(timeout=30) for f in futures]
        many_results = [rf.result(timeout=30) for rf in record_futures]
        assert producer.flush(timeout=30)
        assert producer.outstanding == 0
        metrics = producer.metrics()
    assert all(isinstance(f, kpl.RecordFuture) for f in futures)
    assert all(r.shard_id.startswith("shardId-") for r in results + many_results)
    assert all(r.attempts and r.attempts[-1].success for r in many_results)
    assert any(r.aggregated for r in many_results)
    # Every future's callbacks ran exactly once.
    time.sleep(0.2)
    assert len(calls) == len(single) + len(many)
    assert set(calls.values()) == {1}
    assert metrics["UserRecordsPut"] == len(single) + len(many)
    assert metrics["UserRecordsFailed"] == 0

    records = sim.read_all(stream)
    want = expected(single + many)
    assert with_agg_lib(records) == want
    assert with_ours(records) == want


def test_put_many_accepts_dicts_and_other_streams(sim: Sim) -> None:
    a, b = sim.new_stream(1), sim.new_stream(2)
    with kpl.Producer(**sim.config(a)) as producer:
        futs = producer.put_many(
            [
                {"partition_key": "d1", "data": b"one"},
                {"partition_key": "d2", "data": "two", "stream": b},
                {"partition_key": "d3", "data": bytearray(b"three"), "explicit_hash_key": 5},
                ("d4", memoryview(b"four")),
            ]
        )
        for f in futs:
            f.result(timeout=30)
    assert with_ours(sim.read_all(a)) == expected(
        [("d1", b"one"), ("d3", b"three"), ("d4", b"four")]
    )
    assert with_ours(sim.read_all(b)) == expected([("d2", b"two")])
    ehk = [u for r in sim.read_all(a) for u in kpl.deaggregate(r) if u.partition_key == "d3"]
    assert ehk[0].explicit_hash_key == "5"


def test_async_put_and_put_many(sim: Sim) -> None:
    stream = sim.new_stream(2)
    items = [(f"async-{i % 11}", f"data-{i}".encode()) for i in range(500)]

    async def main() -> List[kpl.PutResult]:
        async with kpl.AsyncProducer(**sim.config(stream)) as producer:
            first = await producer.put(*items[0])
            rest = await producer.put_many(items[1:])
            results = await asyncio.gather(first, *rest)
            assert await producer.flush(timeout=30)
            return list(results)

    results = asyncio.run(main())
    assert len(results) == len(items)
    assert all(isinstance(r, kpl.PutResult) for r in results)
    records = sim.read_all(stream)
    assert with_ours(records) == expected(items)
    assert with_agg_lib(records) == expected(items)


def test_put_blocks_while_buffer_is_full_then_times_out(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(1)
    with kpl.Producer(**sim.config(stream, max_buffered_records=10)) as producer:
        set_latency(500)
        futures = [producer.put(f"bp-{i}", b"x") for i in range(10)]
        start = time.monotonic()
        try:
            producer.put("bp-over", b"y", timeout=0.2)
        except kpl.BufferFullError as e:
            assert e.partition_key == "bp-over" and e.data == b"y"
        else:
            raise AssertionError("expected BufferFullError")
        assert time.monotonic() - start >= 0.19
        # Without a timeout it waits for room, then goes in.
        start = time.monotonic()
        late = producer.put("bp-late", b"z")
        waited = time.monotonic() - start
        assert waited >= 0.1, waited
        set_latency(0)
        assert late.result(timeout=30).shard_id
        for f in futures:
            f.result(timeout=30)


def test_results_the_delivery_thread_has_not_delivered_hold_buffer_room(sim: Sim) -> None:
    # A done-callback that blocks stalls the delivery thread. Results
    # whose callbacks wait behind it count against MaxBufferedRecords until
    # delivered, so puts wait instead of piling up results without bound.
    # (A future without callbacks is completed in place, and its room
    # comes back then.)
    stream = sim.new_stream(1)
    release = threading.Event()
    with kpl.Producer(**sim.config(stream, max_buffered_records=10)) as producer:
        first = producer.put("held-0", b"x")
        first.add_done_callback(lambda _: release.wait(30))
        futures = [first]
        for i in range(1, 10):
            futures.append(producer.put(f"held-{i}", b"x"))
            futures[-1].add_done_callback(lambda _: None)
        assert producer.flush(timeout=30), "all ten resolved in the pipeline"
        assert producer.outstanding == 0
        try:
            producer.put("held-over", b"y", timeout=0.3)
        except kpl.BufferFullError:
            pass
        else:
            raise AssertionError("a put found room while ten results were undelivered")
        release.set()
        assert all(f.result(timeout=30).shard_id for f in futures)
        # Delivered: the room is back.
        assert producer.put("held-after", b"z", timeout=5).result(timeout=30).shard_id


def test_put_many_keeps_its_order_when_the_buffer_fills_midway(sim: Sim) -> None:
    # Room for one 40 KB record: the second must wait. The third is small
    # and would fit at once, but must not overtake the second.
    stream = sim.new_stream(1)
    config = sim.config(stream, max_buffered_bytes=65536, max_user_record_size=65536)
    sizes = [40_000, 40_000, 100]
    with kpl.Producer(**config) as producer:
        futures = producer.put_many([("k", bytes([i]) * n) for i, n in enumerate(sizes)])
        for f in futures:
            f.result(timeout=30)
    stored = [u.data for r in sim.read_all(stream) for u in kpl.deaggregate(r)]
    assert [(d[0], len(d)) for d in stored] == [(i, n) for i, n in enumerate(sizes)]


def test_put_many_waits_for_room(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(1)
    set_latency(200)
    with kpl.Producer(**sim.config(stream, max_buffered_records=10)) as producer:
        start = time.monotonic()
        futs = producer.put_many([(f"pm-{i}", b"x") for i in range(30)])
        assert time.monotonic() - start >= 0.2
        assert all(f.result(timeout=30).shard_id for f in futs)


def test_async_put_waits_for_room_without_blocking_the_loop(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(1)

    async def main() -> int:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        async with kpl.AsyncProducer(**sim.config(stream, max_buffered_records=10)) as p:
            set_latency(400)
            task = asyncio.ensure_future(ticker())
            futs = [await p.put(f"ab-{i}", b"x") for i in range(25)]
            more = await p.put_many([(f"abm-{i}", b"x") for i in range(25)])
            set_latency(0)
            await asyncio.gather(*futs, *more)
            stop = True
            await task
        return ticks

    # Two rounds of 400 ms waits at least: the ticker ran meanwhile.
    assert asyncio.run(main()) >= 20


def test_flush_and_close_with_records_in_flight(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(2)
    producer = kpl.Producer(**sim.config(stream, record_max_buffered_time=5000))
    set_latency(300)
    futures = producer.put_many([(f"fl-{i}", b"f") for i in range(200)])
    assert not any(f.done() for f in futures)
    assert producer.flush(timeout=30)
    assert all(f.done() for f in futures)
    more = [producer.put(f"cl-{i}", b"c") for i in range(200)]
    assert producer.close(timeout=30)
    assert all(f.done() and f.exception() is None for f in more)
    assert producer.outstanding == 0
    set_latency(0)
    got = with_ours(sim.read_all(stream))
    assert sum(got.values()) == 400


def test_flush_timeout_returns_false(slow_sim: Any) -> None:
    sim, set_latency = slow_sim
    stream = sim.new_stream(1)
    with kpl.Producer(**sim.config(stream)) as producer:
        set_latency(800)
        producer.put("ft", b"x")
        assert producer.flush(timeout=0.1) is False
        set_latency(0)
        assert producer.flush(timeout=30) is True


def test_settings_in_any_spelling_and_properties_file(sim: Sim, tmp_path: Any) -> None:
    stream = sim.new_stream(1)
    props = tmp_path / "default_config.properties"
    props.write_text(
        f"KinesisEndpoint = {sim.endpoint}\nRegion = us-east-1\nRecordMaxBufferedTime = 15000\n"
        "AwsAccessKeyId = AKIDLOCALTEST\nAwsSecretAccessKey = local-test-secret\n"
    )
    with kpl.Producer.from_properties(
        props, stream_name=stream, RecordMaxBufferedTime=10, aggregation_enabled=True
    ) as producer:
        assert producer.stream == stream
        assert producer.put("p", b"q").result(timeout=10).shard_id


def test_strict_ordering_by_its_python_name(sim: Sim) -> None:
    # StrictOrdering reaches kpl-core; each key's records land in put order.
    stream = sim.new_stream(2)
    settings = sim.config(stream, strict_ordering=True, aggregation_enabled=False)
    with kpl.Producer(**settings) as producer:
        futures = [producer.put(f"k{i % 5}", str(i).encode()) for i in range(300)]
        results = [f.result(timeout=30) for f in futures]
    for key in range(5):
        seqs = [int(r.sequence_number) for r in results[key::5]]
        assert seqs == sorted(seqs)
    try:
        kpl.Producer(**sim.config(stream, strict_ordering="sometimes"))
    except kpl.ConfigError as e:
        assert "StrictOrdering" in str(e)
    else:
        raise AssertionError("StrictOrdering=sometimes was accepted")


def test_a_stream_named_by_its_arn(sim: Sim) -> None:
    stream = sim.new_stream(2)
    summary = sim.client.describe_stream_summary(StreamName=stream)
    arn = summary["StreamDescriptionSummary"]["StreamARN"]
    assert arn.startswith("arn:aws:kinesis:") and arn.endswith(f":stream/{stream}")
    items = [(f"arn-{i}", f"value {i}".encode()) for i in range(200)]
    with kpl.Producer(**sim.config(arn)) as producer:
        futures = [producer.put(k, d) for k, d in items]
        futures.append(producer.put("named", b"by record", stream=arn))
        for f in futures:
            assert f.result(timeout=30).shard_id.startswith("shardId-")
    assert with_ours(sim.read_all(stream)) == expected(items + [("named", b"by record")])
