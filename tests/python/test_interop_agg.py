"""Our aggregation format against the official Python library (PyPI aws-kinesis-agg).

Both directions, with our side driven through the `kpl` CLI (KPL_BIN):
  * `kpl agg` output -> aws_kinesis_agg.deaggregator.iter_deaggregate_records
    (boto3 get_records record shape) -> exactly the input records;
  * aws_kinesis_agg.aggregator.RecordAggregator output -> `kpl deagg`
    -> exactly the input records;
  * for the same records in one aggregate, both libraries write the same bytes.

Known quirks of aws-kinesis-agg 1.2.3 these tests pin down (see the
test_quirk_* tests): its deaggregator gives a record without an explicit
hash key the FIRST key of the aggregate's explicit-hash-key table (it reads
the absent optional index as 0); its aggregator never finds a known key in
its size estimate (it looks up bytes in a dict of str), so it counts every
partition key as new and closes aggregates early; it wraps even a single
record in the aggregate format, and uses the first record's own partition
key and explicit hash key (or none) for the outer record, where the KPL and
kpl-rs send a lone record plain and use "a" plus the first record's hash key.
"""

import base64
import datetime
import hashlib
import random

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from kplhelpers import kpl_agg, kpl_deagg

MAX_HASH_KEY = str(2**128 - 1)
MAGIC = b"\xf3\x89\x9a\xc2"
ARRIVAL = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def rec(pk, data, ehk=None):
    return {"pk": pk, "data": data, "ehk": ehk}


def md5_hash_key(pk):
    return str(int.from_bytes(hashlib.md5(pk.encode("utf-8")).digest(), "big"))


def as_boto3(kinesis_records):
    """Kinesis records as boto3's get_records returns them (Data is bytes)."""
    out = []
    for i, r in enumerate(kinesis_records):
        record = {
            "SequenceNumber": str(49590338271490256608559692538361571095921575989136588898 + i),
            "ApproximateArrivalTimestamp": ARRIVAL,
            "Data": r["Data"],
            "PartitionKey": r["PartitionKey"],
        }
        if r.get("ExplicitHashKey") is not None:
            # get_records does not return it, but a record may carry it.
            record["ExplicitHashKey"] = r["ExplicitHashKey"]
        out.append(record)
    return out


def python_deaggregate(kinesis_records):
    """Deaggregates with aws-kinesis-agg; returns, per Kinesis record, the
    list of user records (pk, ehk, data, subseq, aggregated)."""
    per_record = []
    for boto3_record in as_boto3(kinesis_records):
        users = []
        for user in iter_deaggregate_records(boto3_record, data_format="Boto3"):
            k = user["kinesis"]
            aggregated = k.get("aggregated", False)
            # Aggregated sub-records come back base64-encoded (Lambda style);
            # a plain record comes back as it went in, Data still bytes.
            data = base64.b64decode(k["data"]) if aggregated else k["data"]
            assert k["sequenceNumber"] == boto3_record["SequenceNumber"]
            users.append(
                {
                    "pk": k["partitionKey"],
                    "ehk": k.get("explicitHashKey"),
                    "data": data,
                    "subseq": k.get("subSequenceNumber"),
                    "aggregated": aggregated,
                }
            )
        per_record.append(users)
    return per_record


def expected_python_ehk(record, aggregate_records):
    """The explicit hash key aws-kinesis-agg reports for RECORD inside an
    aggregate of AGGREGATE_RECORDS: its own, or (library quirk) the first
    one of the aggregate's table when it has none."""
    if record["ehk"] is not None:
        return record["ehk"]
    for r in aggregate_records:
        if r["ehk"] is not None:
            return r["ehk"]
    return None


def check_python_reads_ours(inputs, kinesis_records, max_size=51_200):
    """Every Kinesis record that `kpl agg` wrote deaggregates with
    aws-kinesis-agg to exactly the inputs, in order."""
    per_record = python_deaggregate(kinesis_records)
    position = 0
    for kinesis_record, users in zip(kinesis_records, per_record):
        assert len(kinesis_record["Data"]) + len(kinesis_record["PartitionKey"]) > 0
        group = inputs[position : position + len(users)]
        assert len(group) == len(users), "more user records came out than went in"
        if len(users) == 1 and not users[0]["aggregated"]:
            # A lone record travels plain with its own keys.
            (only,) = group
            assert kinesis_record["PartitionKey"] == only["pk"]
            assert kinesis_record["ExplicitHashKey"] == only["ehk"]
            assert kinesis_record["Data"] == only["data"]
            assert users[0]["pk"] == only["pk"] and users[0]["data"] == only["data"]
        else:
            assert len(users) >= 2, "kpl-rs never aggregates a lone record"
            assert kinesis_record["Data"][:4] == MAGIC
            assert len(kinesis_record["Data"]) <= max_size
            assert kinesis_record["PartitionKey"] == "a"
            first = group[0]
            assert kinesis_record["ExplicitHashKey"] == (first["ehk"] or md5_hash_key(first["pk"]))
            for sub, (user, want) in enumerate(zip(users, group)):
                assert user["aggregated"] is True
                assert user["subseq"] == sub
                assert user["pk"] == want["pk"]
                assert user["data"] == want["data"]
                assert user["ehk"] == expected_python_ehk(want, group)
        position += len(users)
    assert position == len(inputs), f"{len(inputs) - position} user records were lost"


def assorted_records():
    return [
        rec("plain-key", b"hello"),
        rec("ключ-🔑-キー", "données 🚀".encode("utf-8")),
        rec("🙂" * 256, b"partition key of 256 emoji (1024 bytes of UTF-8)"),
        rec("empty-data", b""),
        rec("zero-ehk", b"\x00\x01\x02", ehk="0"),
        rec("max-ehk", b"\xff" * 10, ehk=MAX_HASH_KEY),
        rec("plain-key", b"same key again"),
        rec("zero-ehk", b"same ehk again", ehk="0"),
        rec("another", bytes(range(256))),
        rec("a", b"a user key equal to the aggregate's outer key"),
        rec("x", b"\n\r\t\"\\ json-ish bytes {}"),
    ]


def test_python_deaggregates_assorted_records():
    inputs = assorted_records()
    out = kpl_agg(inputs)
    assert len(out) == 1
    check_python_reads_ours(inputs, out)


def test_python_deaggregates_records_without_explicit_hash_keys():
    inputs = [rec(f"k{i % 7}", f"value {i}".encode()) for i in range(50)]
    out = kpl_agg(inputs)
    assert len(out) == 1
    per_record = python_deaggregate(out)
    assert [(u["pk"], u["ehk"], u["data"]) for u in per_record[0]] == [
        (r["pk"], None, r["data"]) for r in inputs
    ]


def test_single_record_is_sent_plain_and_passes_through():
    inputs = [rec("alone", b"just me", ehk="12345")]
    out = kpl_agg(inputs)
    assert out == [{"PartitionKey": "alone", "ExplicitHashKey": "12345", "Data": b"just me"}]
    check_python_reads_ours(inputs, out)


def test_thousands_of_records_across_aggregates():
    rng = random.Random(20250101)
    keys = [f"user-{i}-{'é' * (i % 5)}" for i in range(300)]
    inputs = []
    for i in range(6000):
        size = rng.choice([0, 1, 10, 100, 1000, 5000])
        ehk = str(rng.randrange(2**128)) if rng.random() < 0.1 else None
        inputs.append(rec(rng.choice(keys), rng.randbytes(size), ehk))
    out = kpl_agg(inputs)
    assert len(out) > 10
    check_python_reads_ours(inputs, out)
    # Full aggregates are packed tight: each one but the last would not
    # have had room for the next record.
    assert all(len(r["Data"]) <= 51_200 for r in out)


def test_records_filling_an_aggregate_exactly():
    # Key table "k": 3 bytes. Each record: 1 (key) + 2 (length 2434) + body
    # of 2434 (index field 2, data field 1 + 2 + 2429). 20 + 3 + 21 * 2437
    # = 51200: exactly the default limit.
    inputs = [rec("k", bytes([i]) * 2429) for i in range(22)]
    out = kpl_agg(inputs)
    assert len(out) == 2
    assert len(out[0]["Data"]) == 51_200
    assert out[1]["PartitionKey"] == "k"  # the 22nd travels alone, plain
    check_python_reads_ours(inputs, out)
    # One byte less of data in the first record and it is still one aggregate.
    smaller = [rec("k", b"x" * 2428)] + inputs[1:21]
    out = kpl_agg(smaller)
    assert len(out) == 1 and len(out[0]["Data"]) == 51_199


def test_records_near_the_size_limit():
    mib = 1 << 20
    inputs = [
        rec("big-1", b"\xab" * (mib - len("big-1"))),  # exactly 1 MiB: key + data
        rec("🐘", b"\xcd" * (mib - len("🐘".encode()))),
        rec("small", b"tiny"),
        rec("big-2", b"\xef" * (mib - len("big-2")), ehk=MAX_HASH_KEY),
    ]
    # With a 10 MiB aggregate they all go in one aggregate...
    out = kpl_agg(inputs, "--max-size", "10485760")
    assert len(out) == 1
    check_python_reads_ours(inputs, out, max_size=10_485_760)
    # ...with the default 51200 each big one travels alone.
    out = kpl_agg(inputs)
    assert [r["PartitionKey"] for r in out] == ["big-1", "🐘", "small", "big-2"]
    check_python_reads_ours(inputs, out)


# ------------------------------------------- the other way: theirs -> ours --


def python_aggregate(inputs, max_size=51_200):
    """Aggregates with aws-kinesis-agg's RecordAggregator; returns
    (Kinesis records, user records per Kinesis record)."""
    aggregator = RecordAggregator(max_size=max_size)
    finished = []
    groups = []
    current = []
    for r in inputs:
        full = aggregator.add_user_record(r["pk"], r["data"], r["ehk"])
        if full is not None:
            finished.append(full)
            groups.append(current)
            current = []
        current.append(r)
    last = aggregator.clear_and_get()
    if last is not None:
        finished.append(last)
        groups.append(current)
    kinesis_records = []
    for i, agg_record in enumerate(finished):
        pk, ehk, data = agg_record.get_contents()
        kinesis_records.append(
            {"PartitionKey": pk, "ExplicitHashKey": ehk, "Data": data, "SequenceNumber": str(1000 + i)}
        )
    return kinesis_records, groups


def check_kpl_reads_theirs(inputs, max_size=51_200):
    kinesis_records, groups = python_aggregate(inputs, max_size)
    code, users, stderr = kpl_deagg(kinesis_records)
    assert code == 0, stderr
    assert [(u["pk"], u["ehk"], u["data"]) for u in users] == [
        (r["pk"], r["ehk"], r["data"]) for r in inputs
    ]
    # Sequence and sub-sequence numbers follow the aggregates.
    expected_numbering = [
        (k["SequenceNumber"], sub) for k, group in zip(kinesis_records, groups) for sub in range(len(group))
    ]
    assert [(u["seq"], u["subseq"]) for u in users] == expected_numbering
    return kinesis_records, groups


def test_kpl_deaggregates_python_assorted_records():
    kinesis_records, _ = check_kpl_reads_theirs(assorted_records())
    assert len(kinesis_records) == 1


def test_kpl_deaggregates_python_single_record_aggregate():
    kinesis_records, _ = check_kpl_reads_theirs([rec("alone", b"wrapped anyway", ehk="7")])
    # aws-kinesis-agg wraps even one record, with its own keys outside.
    assert kinesis_records[0]["Data"][:4] == MAGIC
    assert kinesis_records[0]["PartitionKey"] == "alone"
    assert kinesis_records[0]["ExplicitHashKey"] == "7"


def test_kpl_deaggregates_thousands_of_python_records():
    rng = random.Random(7)
    keys = [f"ключ-{i}" for i in range(200)]
    inputs = [
        rec(rng.choice(keys), rng.randbytes(rng.choice([0, 5, 50, 500, 3000])),
            str(rng.randrange(2**128)) if rng.random() < 0.2 else None)
        for _ in range(5000)
    ]
    kinesis_records, _ = check_kpl_reads_theirs(inputs)
    assert len(kinesis_records) > 10


def test_kpl_deaggregates_python_records_near_one_mib():
    # aws-kinesis-agg caps aggregates at 1 MiB (its MAX_BYTES_PER_RECORD).
    inputs = [rec("big", b"\x01" * 700_000), rec("big", b"\x02" * 349_000), rec("s", b"")]
    kinesis_records, groups = check_kpl_reads_theirs(inputs, max_size=1 << 20)
    assert [len(g) for g in groups] == [1, 2]
    assert len(kinesis_records[0]["Data"]) > 700_000


def test_kpl_shard_range_check_on_python_aggregate():
    inputs = [rec("low", b"1", ehk="0"), rec("high", b"2", ehk=MAX_HASH_KEY)]
    kinesis_records, _ = python_aggregate(inputs)
    code, users, stderr = kpl_deagg(kinesis_records, "--shard-range", f"0:{2**127 - 1}")
    assert code != 0 and users == []
    assert MAX_HASH_KEY in stderr or "range" in stderr, stderr
    code, users, stderr = kpl_deagg(kinesis_records, "--shard-range", f"0:{MAX_HASH_KEY}")
    assert code == 0 and len(users) == 2, stderr


# ------------------------------------------------------- same bytes out --


def test_same_bytes_as_python_aggregator():
    """For the same records in one aggregate, both write the same bytes:
    tables in order of first use, fields in number order, required fields
    always written, MD5 of the protobuf only."""
    rng = random.Random(99)
    cases = [
        assorted_records(),
        [rec(f"k{i % 3}", f"v{i}".encode()) for i in range(100)],
        [rec(f"k{i}", rng.randbytes(rng.randrange(0, 400)), str(rng.randrange(2**128))) for i in range(150)],
        [rec("same", b"") for _ in range(300)],  # indexes 0, empty data
        [rec(f"key{i}", b"d", None if i % 2 else str(i)) for i in range(200)],  # varint indexes > 127
    ]
    for inputs in cases:
        theirs, groups = python_aggregate(inputs, max_size=1 << 20)
        assert len(theirs) == 1 and len(groups[0]) == len(inputs)
        ours = kpl_agg(inputs, "--max-size", "10485760")
        assert len(ours) == 1
        assert ours[0]["Data"] == theirs[0]["Data"]
        # The outer keys differ on purpose (see the module docstring).
        assert ours[0]["PartitionKey"] == "a"
        assert theirs[0]["PartitionKey"] == inputs[0]["pk"]


def test_same_bytes_per_python_aggregate_when_split():
    """aws-kinesis-agg splits earlier than we do (its size estimate counts
    known keys again); each of its aggregates is still byte-identical to
    ours for the same records."""
    inputs = [rec(f"key-{i % 10}", b"z" * 900) for i in range(200)]
    theirs, groups = python_aggregate(inputs)
    ours_split = kpl_agg(inputs)
    assert len(ours_split) <= len(theirs)
    for kinesis_record, group in zip(theirs, groups):
        ours = kpl_agg(group, "--max-size", "10485760")
        assert ours[0]["Data"] == kinesis_record["Data"]


# -------------------------------------------------- library quirks pinned --


def test_quirk_python_deaggregator_gives_first_ehk_to_records_without_one():
    inputs = [rec("no-ehk-1", b"1"), rec("with", b"2", ehk="42"), rec("no-ehk-2", b"3")]
    out = kpl_agg(inputs)
    (users,) = python_deaggregate(out)
    assert [u["ehk"] for u in users] == ["42", "42", "42"]  # should be None, "42", None
    # kpl deagg reads the same bytes right.
    code, ours, stderr = kpl_deagg([dict(out[0], SequenceNumber="1")])
    assert code == 0, stderr
    assert [u["ehk"] for u in ours] == [None, "42", None]


def test_quirk_python_aggregator_overestimates_known_keys():
    inputs = [rec("k", b"x" * 100) for _ in range(1000)]
    theirs, groups = python_aggregate(inputs)
    ours = kpl_agg(inputs)
    # It counts the key table entry "k" again for every record, so fewer
    # records fit its first aggregate (469: 109 bytes each) than fit ours
    # (482: 106 bytes each, exact).
    ours_first = python_deaggregate(ours[:1])[0]
    assert len(ours_first) == 482
    assert len(groups[0]) < len(ours_first)
    assert len(ours[0]["Data"]) > len(theirs[0]["Data"])
    assert all(len(k["Data"]) <= 51_200 for k in theirs)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
