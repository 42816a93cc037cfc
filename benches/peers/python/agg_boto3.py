"""aws-kinesis-agg RecordAggregator + boto3 put_records (<= 500 Kinesis
records and <= 5 MiB per call, one call at a time, as the library's README shows). No
per-record results: latency is not reported.
    agg_boto3.py ENDPOINT STREAM N SIZE KEYS"""
import json, sys, time
import boto3
from aws_kinesis_agg.aggregator import RecordAggregator

endpoint, stream, n, size, keys = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="y")
t0 = time.perf_counter()
agg = RecordAggregator()
batch, batch_bytes, failed = [], 0, 0


def send(batch):
    global failed
    out = client.put_records(StreamName=stream, Records=batch)
    failed += out.get("FailedRecordCount", 0)


def add(rec):
    global batch, batch_bytes
    if rec is None:
        return
    pk, ehk, data = rec.get_contents()
    size = len(data) + len(pk)
    if batch and batch_bytes + size > 5 * 1024 * 1024:  # PutRecords takes at most 5 MiB
        send(batch)
        batch, batch_bytes = [], 0
    batch_bytes += size
    entry = {"PartitionKey": pk, "Data": data}
    if ehk is not None:
        entry["ExplicitHashKey"] = ehk
    batch.append(entry)
    if len(batch) == 500:
        send(batch)
        batch, batch_bytes = [], 0


for i in range(n):
    data = i.to_bytes(4, "little") + bytes([97 + i % 26]) * (size - 4)
    add(agg.add_user_record("pk-%d" % (i % keys), data))
add(agg.clear_and_get())
if batch:
    send(batch)
secs = time.perf_counter() - t0
print(json.dumps({"records": n, "seconds": secs, "records_per_sec": n / secs, "failed_kinesis_records": failed}))
