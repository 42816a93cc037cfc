"""aiokpl (PyPI): put_record per record under asyncio, aggregation on (its
default), per-shard rate limits lifted, defaults otherwise; waits every
Outcome. Result time is stamped when the Outcome is set (a wrapper around
Outcome.set_value), so latency is put-to-result.
    aiokpl_peer.py ENDPOINT STREAM N SIZE KEYS"""
import asyncio, json, sys, time
import aiokpl.outcome as outcome_mod
from aiokpl.config import Config
from aiokpl.producer import Producer

_orig = outcome_mod.Outcome.set_value
done_at = {}


def _stamped(self, value):
    done_at[id(self)] = time.perf_counter()
    return _orig(self, value)


outcome_mod.Outcome.set_value = _stamped


async def main():
    endpoint, stream, n, size, keys = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    cfg = Config(region="us-east-1", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                 rate_limit_records_per_sec_per_shard=1e12, rate_limit_bytes_per_sec_per_shard=1e15)
    failed = 0
    t0 = time.perf_counter()
    async with Producer(cfg) as p:
        pending = []
        for i in range(n):
            data = i.to_bytes(4, "little") + bytes([97 + i % 26]) * (size - 4)
            sent = time.perf_counter()
            o = await p.put_record(stream=stream, partition_key="pk-%d" % (i % keys), data=data)
            pending.append((sent, o))
        await p.flush()
        lat = []
        for sent, o in pending:
            r = await o.wait()
            if not r.success:
                failed += 1
            lat.append((done_at.get(id(o), time.perf_counter()) - sent) * 1000)
        secs = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"records": n, "seconds": secs, "records_per_sec": n / secs,
                      "latency_ms_p50": lat[n // 2], "latency_ms_p99": lat[n * 99 // 100], "failed": failed}))


asyncio.run(main())
