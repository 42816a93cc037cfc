// aws-kinesis-agg (aggregate) + @aws-sdk/client-kinesis PutRecords (<= 500
// records, <= 5 MiB per call, 4 calls in flight; HTTP/1.1 handler for the sim).
// Records come in events of CHUNK, as in ours.mjs: each event's records are
// aggregated and queued for PutRecords, then the event loop turns
// (setImmediate) so calls in flight complete while records keep coming.
// No per-record results: latency is not reported.  node agg-sdk.mjs ENDPOINT STREAM N SIZE KEYS
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const agg = require('aws-kinesis-agg');
const { KinesisClient, PutRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');
const [endpoint, stream, n, size, keys] = process.argv.slice(2);
const N = Number(n), SIZE = Number(size), KEYS = Number(keys);
const CHUNK = 10_000, IN_FLIGHT = 4, MAX_RECORDS = 500, MAX_BYTES = 5 * 1024 * 1024;
const client = new KinesisClient({ endpoint, region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
const record = (i) => {
  const data = Buffer.allocUnsafe(SIZE).fill(97 + (i % 26)); // pooled, as Buffer.from(string) is
  data.writeUInt32LE(i, 0);
  return { partitionKey: `pk-${i % KEYS}`, data };
};
const aggregate = (records) => new Promise((res, rej) => {
  const out = [];
  agg.aggregate(records, (e, done) => { out.push(e); done(); }, () => res(out), (err) => rej(err));
});

// Aggregated records waiting for a PutRecords call, oldest at `head`.
let queue = [], head = 0, inFlight = 0, failed = 0, error = null, drained = null;
const pump = () => {
  while (inFlight < IN_FLIGHT && head < queue.length) {
    const batch = [];
    let bytes = 0;
    while (head < queue.length && batch.length < MAX_RECORDS) {
      const e = queue[head];
      const sz = e.data.length + Buffer.byteLength(e.partitionKey);
      if (batch.length > 0 && bytes + sz > MAX_BYTES) break;
      batch.push({ Data: e.data, PartitionKey: e.partitionKey, ExplicitHashKey: e.explicitHashKey });
      bytes += sz;
      head++;
    }
    if (head === queue.length) { queue = []; head = 0; }
    inFlight++;
    client.send(new PutRecordsCommand({ StreamName: stream, Records: batch })).then(
      (out) => { failed += out.FailedRecordCount || 0; },
      (err) => { error = err; },
    ).finally(() => {
      inFlight--;
      pump();
      if (inFlight === 0 && head === queue.length && drained) drained();
    });
  }
};

const t0 = performance.now();
for (let base = 0; base < N; base += CHUNK) {
  const count = Math.min(CHUNK, N - base);
  const records = Array.from({ length: count }, (_, k) => record(base + k));
  for (const e of await aggregate(records)) queue.push(e);
  pump();
  await new Promise(setImmediate);
}
if (inFlight > 0 || head < queue.length) await new Promise((r) => { drained = r; });
if (error) throw error;
const secs = (performance.now() - t0) / 1000;
client.destroy();
console.log(JSON.stringify({ records: N, seconds: secs, records_per_sec: N / secs, failed_kinesis_records: failed }));
