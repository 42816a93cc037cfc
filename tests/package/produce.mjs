// Installed-npm-package check: produce to `kpl sim` with kpl-rs and read back.
//
//   KPL_BIN=dist/kpl node produce.mjs      (from a project that installed the tarball)
//
// Run by scripts/test.sh's `package` step from an empty project into which
// dist/kpl-rs-<version>.tgz was installed (no cargo on PATH). Reads the
// stream back over the simulator's plain JSON API with fetch and checks that
// every record arrived once, with its key and data.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { Producer, deaggregate } from 'kpl-rs';

const STREAM = 'npm';
const SHARDS = 2;
const RECORDS = 2000;

const sim = spawn(process.env.KPL_BIN, ['sim', '--port', '0', '--stream', `${STREAM}:${SHARDS}`], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const lines = createInterface({ input: sim.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    sim.once('exit', (code) => reject(new Error(`kpl sim exited with ${code}`)));
  });
  lines.on('line', () => {});
  const endpoint = /listening on (http:\/\/\S+)/.exec(first)?.[1];
  if (!endpoint) throw new Error(`kpl sim did not start: ${first}`);

  const call = async (action, body) => {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Kinesis_20131202.${action}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${action}: ${res.status} ${await res.text()}`);
    return res.json();
  };

  const sent = new Map();
  for (let i = 0; i < RECORDS; i++) sent.set(`rec-${i}`, `key-${i % 50}`);
  const producer = await Producer.create({
    streamName: STREAM, kinesisEndpoint: endpoint, region: 'us-east-1',
    awsAccessKeyId: 'AKIDLOCALTEST', awsSecretAccessKey: 'local-test-secret', recordMaxBufferedTime: 20,
  });
  const results = await producer.putMany(
    [...sent].map(([data, partitionKey]) => ({ partitionKey, data: Buffer.from(data) })));
  await producer.close();

  const seen = new Map();
  let got = 0;
  for (let shard = 0; shard < SHARDS; shard++) {
    let { ShardIterator: it } = await call('GetShardIterator', {
      StreamName: STREAM, ShardId: `shardId-${String(shard).padStart(12, '0')}`, ShardIteratorType: 'TRIM_HORIZON',
    });
    while (it) {
      const page = await call('GetRecords', { ShardIterator: it, Limit: 10000 });
      for (const r of page.Records) {
        for (const u of deaggregate(r)) {
          seen.set(u.data.toString(), u.partitionKey);
          got++;
        }
      }
      it = page.Records.length > 0 ? page.NextShardIterator : undefined;
    }
  }
  const ok = got === RECORDS && seen.size === sent.size &&
    [...sent].every(([data, key]) => seen.get(data) === key) && results.every((r) => r.shardId);
  // The addon file that was loaded: the package's own or a platform package's.
  const addon = Object.keys(createRequire(import.meta.url).cache).find((f) => f.endsWith('.node'));
  const aggregated = results.filter((r) => r.aggregated).length;
  console.log(`npm: addon ${addon}: ${results.length} records put (${aggregated} aggregated), ` +
    `${got} read back: ${ok ? 'ok' : 'MISMATCH'}`);
  process.exitCode = ok ? 0 : 1;
} finally {
  sim.kill('SIGTERM');
}
