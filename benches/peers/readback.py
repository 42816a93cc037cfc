#!/usr/bin/env python3
"""Reads a kpl-sim stream back from TRIM_HORIZON (every shard) and counts the
USER records it holds, deaggregating with `kpl deagg`.

    readback.py ENDPOINT STREAM KPL_BIN  ->  one JSON line:
    {"kinesis_records": K, "user_records": U, "distinct_user_records": D}

D counts distinct (partition key, data) pairs: when every record a peer puts is
distinct (they are: each carries its index), U > D means duplicates."""
import json, subprocess, sys, urllib.request

endpoint, stream, kpl = sys.argv[1], sys.argv[2], sys.argv[3]


def call(target, body):
    req = urllib.request.Request(endpoint, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Kinesis_20131202." + target,
        "Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0",
    })
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


shards = call("ListShards", {"StreamName": stream})["Shards"]
records = []
for s in shards:
    it = call("GetShardIterator", {"StreamName": stream, "ShardId": s["ShardId"],
                                    "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
    while it:
        out = call("GetRecords", {"ShardIterator": it, "Limit": 10000})
        records.extend(out.get("Records", []))
        if not out.get("Records") and out.get("MillisBehindLatest", 0) == 0:
            break
        it = out.get("NextShardIterator")
p = subprocess.run([kpl, "deagg"], input=json.dumps({"Records": records}).encode(),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
users = 0
seen = set()
for line in p.stdout.splitlines():
    if not line.strip():
        continue
    users += 1
    u = json.loads(line)
    seen.add((u.get("PartitionKey") or u.get("partition_key"), u.get("Data") or u.get("data")))
print(json.dumps({"kinesis_records": len(records), "user_records": users, "distinct_user_records": len(seen)}))
