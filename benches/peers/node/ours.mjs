// kpl-rs from Node: put() per record (a promise each, latency from put to
// result), rateLimit lifted; one JSON line.  node ours.mjs ENDPOINT STREAM N SIZE KEYS
import { createRequire } from 'node:module';
const [endpoint, stream, n, size, keys] = process.argv.slice(2);
const N = Number(n), SIZE = Number(size), KEYS = Number(keys);
const require = createRequire(import.meta.url);
const { Producer } = require(process.env.KPL_NODE_INDEX);
const producer = await Producer.create({
  streamName: stream, kinesisEndpoint: endpoint, region: 'us-east-1',
  awsAccessKeyId: 'x', awsSecretAccessKey: 'y', rateLimit: 1000000,
});
const lat = new Float64Array(N);
let failed = 0;
const t0 = performance.now();
const pending = new Array(N);
for (let i = 0; i < N; i++) {
  const data = Buffer.alloc(SIZE, 97 + (i % 26));
  data.writeUInt32LE(i, 0);
  const sent = performance.now();
  pending[i] = producer.put({ partitionKey: `pk-${i % KEYS}`, data }).then(
    (r) => { lat[i] = performance.now() - sent; if (r && r.success === false) failed++; },
    () => { lat[i] = performance.now() - sent; failed++; });
}
await Promise.all(pending);
const secs = (performance.now() - t0) / 1000;
await producer.close();
lat.sort();
console.log(JSON.stringify({ records: N, seconds: secs, records_per_sec: N / secs,
  latency_ms_p50: lat[Math.floor(N / 2)], latency_ms_p99: lat[Math.floor(N * 0.99)], failed }));
