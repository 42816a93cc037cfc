// aws-kinesis-agg (aggregate) + @aws-sdk/client-kinesis PutRecords (<= 500
// records, <= 5 MiB per call, 4 calls in flight; HTTP/1.1 handler for the sim).
// No per-record results: latency is not reported.  node agg-sdk.mjs ENDPOINT STREAM N SIZE KEYS
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const agg = require('aws-kinesis-agg');
const { KinesisClient, PutRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');
const [endpoint, stream, n, size, keys] = process.argv.slice(2);
const N = Number(n), SIZE = Number(size), KEYS = Number(keys);
const client = new KinesisClient({ endpoint, region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
const t0 = performance.now();
const records = Array.from({ length: N }, (_, i) => {
  const data = Buffer.alloc(SIZE, 97 + (i % 26));
  data.writeUInt32LE(i, 0);
  return { partitionKey: `pk-${i % KEYS}`, data };
});
const encoded = await new Promise((res, rej) => {
  const out = [];
  agg.aggregate(records, (e, done) => { out.push(e); done(); }, () => res(out), (err) => rej(err));
});
const batches = [];
let batch = [], bytes = 0;
for (const e of encoded) {
  const sz = e.data.length + Buffer.byteLength(e.partitionKey);
  if (batch.length === 500 || bytes + sz > 5 * 1024 * 1024) { batches.push(batch); batch = []; bytes = 0; }
  batch.push({ Data: e.data, PartitionKey: e.partitionKey, ExplicitHashKey: e.explicitHashKey });
  bytes += sz;
}
if (batch.length) batches.push(batch);
let next = 0, failed = 0;
const worker = async () => {
  while (next < batches.length) {
    const b = batches[next++];
    const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: b }));
    failed += out.FailedRecordCount || 0;
  }
};
await Promise.all([worker(), worker(), worker(), worker()]);
const secs = (performance.now() - t0) / 1000;
client.destroy();
console.log(JSON.stringify({ records: N, seconds: secs, records_per_sec: N / secs, failed_kinesis_records: failed }));
