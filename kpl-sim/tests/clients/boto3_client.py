"""Drive kpl-sim with boto3: create, put, list, read back, assert.

Usage: python boto3_client.py ENDPOINT
"""
import hashlib
import sys

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
k = boto3.client(
    "kinesis",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKID",
    aws_secret_access_key="SECRET",
    config=Config(retries={"max_attempts": 1}),
)

k.create_stream(StreamName="py", ShardCount=3)
k.get_waiter("stream_exists").wait(StreamName="py", WaiterConfig={"Delay": 0.1, "MaxAttempts": 5})
summary = k.describe_stream_summary(StreamName="py")["StreamDescriptionSummary"]
assert summary["StreamStatus"] == "ACTIVE", summary
assert summary["OpenShardCount"] == 3, summary

one = k.put_record(StreamName="py", Data=b"hello", PartitionKey="pk-0")
assert one["ShardId"].startswith("shardId-"), one
entries = [{"Data": ("rec-%d" % i).encode(), "PartitionKey": "pk-%d" % i} for i in range(1, 200)]
res = k.put_records(StreamName="py", Records=entries)
assert res["FailedRecordCount"] == 0, res
assert len(res["Records"]) == 199

# Paged by hand: like the service, the simulator refuses NextToken together with StreamName.
shards = []
page = k.list_shards(StreamName="py", MaxResults=2)
shards.extend(page["Shards"])
while page.get("NextToken"):
    page = k.list_shards(NextToken=page["NextToken"], MaxResults=2)
    shards.extend(page["Shards"])
assert [s["ShardId"] for s in shards] == ["shardId-%012d" % i for i in range(3)], shards
assert shards[-1]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)

got = {}
for s in shards:
    it = k.get_shard_iterator(StreamName="py", ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while it:
        r = k.get_records(ShardIterator=it, Limit=50)
        for rec in r["Records"]:
            got[rec["PartitionKey"]] = rec["Data"]
            assert rec["ApproximateArrivalTimestamp"].year >= 2024
            h = int.from_bytes(hashlib.md5(rec["PartitionKey"].encode()).digest(), "big")
            assert int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"])
        if not r["Records"]:
            break
        it = r.get("NextShardIterator")
assert len(got) == 200, len(got)
assert got["pk-0"] == b"hello"
assert got["pk-7"] == b"rec-7"

try:
    k.describe_stream(StreamName="missing")
    raise SystemExit("expected ResourceNotFoundException")
except k.exceptions.ResourceNotFoundException:
    pass

k.delete_stream(StreamName="py")
print("boto3 OK")
