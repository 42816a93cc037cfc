"""kpl-rs from Python, one JSON line. Modes:

  put_many  Producer.put_many over chunks of 10,000 records (a future each)
  put       Producer.put, one call per record, every future kept
  async     AsyncProducer: `fut = await producer.put(...)` per record, every
            future kept and awaited at the end, one after another (as the
            aiokpl row awaits its outcomes; asyncio.gather over a million
            futures adds a done-callback and a scheduled handle per future,
            about 4 s per million here, asyncio's cost whatever the library)

Latency (put to result) is sampled on every 100th record through its
future's done-callback. Records/s runs from the first put to the last result.

    ours.py ENDPOINT STREAM N SIZE KEYS [--mode put_many|put|async]"""
import argparse, asyncio, json, time
import kpl

a = argparse.ArgumentParser()
a.add_argument("endpoint"); a.add_argument("stream")
a.add_argument("n", type=int); a.add_argument("size", type=int); a.add_argument("keys", type=int)
a.add_argument("--mode", choices=("put_many", "put", "async"), default="put_many")
o = a.parse_args()
n, size = o.n, o.size
CHUNK, SAMPLE = 10_000, 100
SETTINGS = dict(stream_name=o.stream, kinesis_endpoint=o.endpoint, region="us-east-1",
                aws_access_key_id="x", aws_secret_access_key="y", rate_limit=1_000_000)
# Each record's data: its index (4 bytes, so the read-back can tell records
# apart) then letters; keys and tails made once, as an application would.
KEYS = [f"pk-{k}" for k in range(o.keys)]
TAILS = [bytes([97 + c]) * (size - 4) for c in range(26)]
latencies = []


def record(i):
    return KEYS[i % o.keys], i.to_bytes(4, "little") + TAILS[i % 26]


def sample(f, sent):
    f.add_done_callback(lambda _f: latencies.append(time.perf_counter() - sent))


def kept(futures):
    """Keeps each future; samples the latency of those put at a time `sent`."""
    def keep(f, sent):
        futures.append(f)
        if sent:
            sample(f, sent)
    return keep


def run_put_many():
    producer = kpl.Producer(**SETTINGS)
    futures = []
    t0 = time.perf_counter()
    for base in range(0, n, CHUNK):
        chunk = [record(i) for i in range(base, min(base + CHUNK, n))]
        sent = time.perf_counter()
        got = producer.put_many(chunk)
        for f in got[::SAMPLE]:
            sample(f, sent)
        futures.extend(got)
    failed = sum(1 for f in futures if f.exception() is not None)
    secs = time.perf_counter() - t0
    producer.close()
    return secs, failed


def run_put():
    producer = kpl.Producer(**SETTINGS)
    put = producer.put
    futures = []
    keep = kept(futures)
    t0 = time.perf_counter()
    for i in range(n):
        key, data = record(i)
        sent = 0.0 if i % SAMPLE else time.perf_counter()
        keep(put(key, data), sent)
    failed = sum(1 for f in futures if f.exception() is not None)
    secs = time.perf_counter() - t0
    producer.close()
    return secs, failed


async def run_async():
    producer = kpl.AsyncProducer(**SETTINGS)
    put = producer.put
    futures = []
    keep = kept(futures)
    t0 = time.perf_counter()
    for i in range(n):
        key, data = record(i)
        sent = 0.0 if i % SAMPLE else time.perf_counter()
        keep(await put(key, data), sent)
    failed = 0
    for f in futures:
        try:
            await f
        except kpl.KplError:
            failed += 1
    secs = time.perf_counter() - t0
    await producer.close()
    return secs, failed


secs, failed = {"put_many": run_put_many, "put": run_put,
                "async": lambda: asyncio.run(run_async())}[o.mode]()
latencies.sort()
ms = lambda q: latencies[int(len(latencies) * q)] * 1000 if latencies else None
print(json.dumps({"mode": o.mode, "records": n, "seconds": secs, "records_per_sec": n / secs,
                  "latency_ms_p50": ms(0.5), "latency_ms_p99": ms(0.99), "failed": failed}))
