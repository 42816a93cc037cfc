// Throughput of the kpl-rs Node binding against kpl-sim (unlimited, 4
// shards), next to aws-kinesis-agg + @aws-sdk/client-kinesis on the same
// workload. Prints records/s.
//
//   CARGO_TARGET_DIR=target cargo build -p kpl-node --release   # the bench loads the release addon
//   node bindings/node/bench/bench.mjs [--records 200000] [--size 100]
//
// The release library (target/release/libkpl_node.so) is used when it
// exists (via NAPI_RS_NATIVE_LIBRARY_PATH), else the addon built in place.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { startSim, kinesisClient, ROOT } from '../test/helpers.mjs';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    size: { type: 'string', default: '100' },
    keys: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '2' },
  },
});
const N = Number(args.records);
const SIZE = Number(args.size);
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);

const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const release = join(targetDir, 'release', 'libkpl_node.so');
let flavor = 'in-place addon (bindings/node/*.node)';
if (!process.env.NAPI_RS_NATIVE_LIBRARY_PATH && existsSync(release)) {
  const copy = join(mkdtempSync(join(tmpdir(), 'kpl-bench-')), 'kpl-rs.node');
  copyFileSync(release, copy);
  process.env.NAPI_RS_NATIVE_LIBRARY_PATH = copy;
  flavor = `release (${release})`;
}
if (!process.env.KPL_BIN && existsSync(join(targetDir, 'release', 'kpl'))) {
  process.env.KPL_BIN = join(targetDir, 'release', 'kpl'); // a release simulator
}
const require = createRequire(import.meta.url);
const { Producer } = require('../index.js');
const agg = require('aws-kinesis-agg');
const { PutRecordsCommand } = require('@aws-sdk/client-kinesis');

function workload() {
  const payload = Buffer.alloc(SIZE, 'x');
  // Keys are not number-like (aws-kinesis-agg's aggregator mixes those up).
  return Array.from({ length: N }, (_, i) => ({ partitionKey: `key-${i % KEYS}`, data: payload }));
}

/** CPU seconds of the JS thread so far (Linux; NaN elsewhere). */
function jsThreadCpu() {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  } catch {
    return NaN;
  }
}

async function timed(name, fn) {
  // CPU per record too: on a busy machine it varies less than the rate.
  const c0 = process.cpuUsage();
  const j0 = jsThreadCpu();
  const t0 = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const perRecord = (x) => (x * 1e6 / N).toFixed(2);
  const rate = N / s;
  console.log(`${name.padEnd(44)} ${N} records in ${s.toFixed(2)} s: ${Math.round(rate).toLocaleString('en-US')} records/s, ` +
    `${perRecord((c.user + c.system) / 1e6)} CPU us/record (JS thread ${perRecord(jsThreadCpu() - j0)})`);
  return rate;
}

async function ours(sim, stream, mode) {
  // The simulator is unlimited: lift the producer's own rate limiter too
  // (RateLimit, % of the shard limits), as `kpl perf --unlimited` does;
  // otherwise 4 shards cap the run at ~6 MB/s (~60,000 records/s here).
  const producer = await Producer.create(sim.options(stream, { recordMaxBufferedTime: 50, rateLimit: 1_000_000 }));
  const records = workload();
  const rate = await timed(`kpl-rs ${mode}`, async () => {
    if (mode === 'putMany') {
      const results = await producer.putMany(records);
      if (results.length !== N) throw new Error('missing results');
    } else {
      const results = await Promise.all(records.map((r) => producer.put(r)));
      if (results.length !== N) throw new Error('missing results');
    }
  });
  await producer.close();
  return rate;
}

/** aws-kinesis-agg's aggregate() + PutRecords batches (<= 500 records, <= 5 MiB), 4 requests in flight. */
async function baseline(sim, stream) {
  const client = kinesisClient(sim.endpoint);
  const records = workload();
  const rate = await timed('aws-kinesis-agg + @aws-sdk/client-kinesis', async () => {
    const encoded = await new Promise((res, rej) => {
      const out = [];
      agg.aggregate(records, (e, done) => { out.push(e); done(); }, () => res(out), (err) => rej(err));
    });
    const batches = [];
    let batch = [];
    let bytes = 0;
    for (const e of encoded) {
      const size = e.data.length + Buffer.byteLength(e.partitionKey);
      if (batch.length === 500 || bytes + size > 5 * 1024 * 1024) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push({ Data: e.data, PartitionKey: e.partitionKey, ExplicitHashKey: e.explicitHashKey });
      bytes += size;
    }
    if (batch.length) batches.push(batch);
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const b = batches[next++];
        const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: b }));
        if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records failed`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  });
  client.destroy();
  return rate;
}

/**
 * The Rust core alone on the same workload and simulator (`kpl perf`, no
 * JavaScript): the ceiling for any binding of it.
 */
function core(sim, stream) {
  const out = execFileSync(process.env.KPL_BIN ?? join(targetDir, 'debug', 'kpl'), [
    'perf', '--endpoint', sim.endpoint, '--stream', stream, '--records', String(N),
    '--record-size', String(Math.max(SIZE, 24)), '--partition-keys', String(KEYS),
    '--unlimited', '--no-verify', '--json', '--region', 'us-east-1',
    '--set', `AwsAccessKeyId=${sim.options(stream).awsAccessKeyId}`,
    '--set', `AwsSecretAccessKey=${sim.options(stream).awsSecretAccessKey}`,
  ], { encoding: 'utf8' });
  const rate = JSON.parse(out.trim().split('\n').pop()).records_per_sec;
  console.log(`${'kpl-rs core alone (kpl perf, no JS)'.padEnd(44)} ${N} records: ${Math.round(rate).toLocaleString('en-US')} records/s`);
  return rate;
}

const sim = await startSim(['bench:4'], ['--unlimited']);
try {
  console.log(`node ${process.version}; addon: ${flavor}; ${N} records of ${SIZE} bytes over ${KEYS} keys; kpl sim 4 shards, unlimited`);
  const best = { putMany: 0, put: 0, baseline: 0, core: 0 };
  for (let run = 0; run < RUNS; run++) {
    best.putMany = Math.max(best.putMany, await ours(sim, 'bench', 'putMany'));
    best.put = Math.max(best.put, await ours(sim, 'bench', 'put'));
    best.baseline = Math.max(best.baseline, await baseline(sim, 'bench'));
    best.core = Math.max(best.core, core(sim, 'bench'));
  }
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  const x = (r) => `${(r / best.baseline).toFixed(1)}x`;
  console.log(`best of ${RUNS}: putMany ${fmt(best.putMany)}/s (${x(best.putMany)}), put ${fmt(best.put)}/s (${x(best.put)}), ` +
    `baseline ${fmt(best.baseline)}/s; the core alone ${fmt(best.core)}/s (${x(best.core)})`);
} finally {
  sim.stop();
}
