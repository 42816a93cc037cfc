"""kpl-rs from Python: put_many over chunks of 10,000 records, one future
per record; latency (put to result) sampled on every 100th record through
its future's done-callback. One JSON line.
    ours.py ENDPOINT STREAM N SIZE KEYS"""
import json, sys, time
import kpl

endpoint, stream, n, size, keys = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
CHUNK, SAMPLE = 10_000, 100
producer = kpl.Producer(stream_name=stream, kinesis_endpoint=endpoint, region="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="y", rate_limit=1_000_000)


def record(i):
    data = bytearray(bytes([97 + i % 26]) * size)
    data[:4] = i.to_bytes(4, "little")
    return (f"pk-{i % keys}", bytes(data))


latencies = []
futures = []
t0 = time.perf_counter()
for base in range(0, n, CHUNK):
    chunk = [record(i) for i in range(base, min(base + CHUNK, n))]
    sent = time.perf_counter()
    got = producer.put_many(chunk)
    for f in got[::SAMPLE]:
        f.add_done_callback(lambda _f, sent=sent: latencies.append(time.perf_counter() - sent))
    futures.extend(got)
failed = sum(1 for f in futures if f.exception() is not None)
secs = time.perf_counter() - t0
producer.close()
latencies.sort()
ms = lambda q: latencies[int(len(latencies) * q)] * 1000 if latencies else None
print(json.dumps({"records": n, "seconds": secs, "records_per_sec": n / secs,
                  "latency_ms_p50": ms(0.5), "latency_ms_p99": ms(0.99), "failed": failed}))
