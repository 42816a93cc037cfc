// kpl-rs from Node, rateLimit lifted; one JSON line.
//   node ours.mjs ENDPOINT STREAM N SIZE KEYS [--many]
// put() per record (a promise each, settled through one shared pair of
// handlers as a high-rate caller would; latency from put to result of every
// 64th record, with a closure of its own), or with
// --many putMany() over chunks of CHUNK records (latency from the chunk's
// putMany call to its promise, which settles with the chunk's last result).
// Records come in events of CHUNK: the event loop turns (setImmediate)
// after each, as it does between the requests of a server, so results are
// taken (and their buffer room given back) while records keep coming.
// Without the turns all N are put in one synchronous run, no result is
// taken until its end, and the pipeline stops once the buffer is full.
import { createRequire } from 'node:module';
const [endpoint, stream, n, size, keys, flag] = process.argv.slice(2);
const N = Number(n), SIZE = Number(size), KEYS = Number(keys), MANY = flag === '--many';
const CHUNK = 10_000;
const require = createRequire(import.meta.url);
const { Producer } = require(process.env.KPL_NODE_INDEX);
const producer = await Producer.create({
  streamName: stream, kinesisEndpoint: endpoint, region: 'us-east-1',
  awsAccessKeyId: 'x', awsSecretAccessKey: 'y', rateLimit: 1000000,
});
const record = (i) => {
  const data = Buffer.allocUnsafe(SIZE).fill(97 + (i % 26)); // pooled, as Buffer.from(string) is
  data.writeUInt32LE(i, 0);
  return { partitionKey: `pk-${i % KEYS}`, data };
};
const lat = new Float64Array(MANY ? N : Math.ceil(N / 64));
let failed = 0;
const t0 = performance.now();
const pending = [];
const turn = () => new Promise(setImmediate);
if (MANY) {
  for (let base = 0; base < N; base += CHUNK) {
    const count = Math.min(CHUNK, N - base);
    const chunk = Array.from({ length: count }, (_, k) => record(base + k));
    const sent = performance.now();
    const settle = () => lat.fill(performance.now() - sent, base, base + count);
    pending.push(producer.putMany(chunk).then(settle, (e) => {
      settle();
      failed += e.errors ? e.errors.length : count;
    }));
    await turn();
  }
} else {
  // One shared pair of handlers; put-to-result latency for every 64th record.
  let left = N, done;
  const all = new Promise((r) => { done = r; });
  const ok = () => { if (--left === 0) done(); };
  const bad = () => { failed++; if (--left === 0) done(); };
  for (let i = 0; i < N; i++) {
    const p = producer.put(record(i));
    if ((i & 63) === 0) {
      const sent = performance.now();
      p.then(() => { lat[i >> 6] = performance.now() - sent; }, () => { lat[i >> 6] = performance.now() - sent; });
    }
    p.then(ok, bad);
    if ((i + 1) % CHUNK === 0) await turn();
  }
  pending.push(all);
}
await Promise.all(pending);
const secs = (performance.now() - t0) / 1000;
await producer.close();
lat.sort();
const L = lat.length;
console.log(JSON.stringify({ records: N, seconds: secs, records_per_sec: N / secs,
  latency_ms_p50: lat[Math.floor(L / 2)], latency_ms_p99: lat[Math.floor(L * 0.99)], failed }));
