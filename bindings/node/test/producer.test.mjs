// The kpl-rs Node binding against kpl-sim (a child process).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import agg from 'aws-kinesis-agg';

import {
  Producer, deaggregate, KplError, ValidationError, ConfigError, BufferFullError, ServiceError,
  ShutDownError, PutManyError, UnknownSettingError, checkConfig,
} from '../index.mjs';
import { ROOT, deadEndpoint, readStream, sleep, startSim } from './helpers.mjs';

const require = createRequire(import.meta.url);

let sim;
let slow; // a separate simulator for latency faults

before(async () => {
  sim = await startSim(['intact:4', 'many:2', 'errors:1', 'flush:2', 'close:2', 'props:1', 'exit:1', 'mutate:1', 'byarn:2'], ['--unlimited']);
  slow = await startSim(['slow:1']);
});
after(() => {
  sim?.stop();
  slow?.stop();
});

/** Records with varied sizes and keys, no explicit hash keys (see README of tests). */
function makeRecords(n, tag) {
  return Array.from({ length: n }, (_, i) => ({
    partitionKey: `${tag}-key-${i % 37}`,
    data: Buffer.from(`${tag}:${i}:${'x'.repeat(i % 200)}`),
  }));
}

describe('round trip', () => {
  test('records come back intact, read with the SDK and deaggregated by aws-kinesis-agg and by us', async () => {
    const producer = await Producer.create(sim.options('intact', { recordMaxBufferedTime: 50 }));
    const records = makeRecords(3000, 'rt');
    // Mixed data types: Buffer, Uint8Array, string.
    records[1].data = new Uint8Array([1, 2, 3, 250]);
    records[2].data = 'text ✓ utf-8';
    // Partition keys beyond ASCII, through putMany and through put().
    records[3].partitionKey = 'clé-😀-3';
    records[2500].partitionKey = 'ключ-2500';
    const results = await producer.putMany(records.slice(0, 2000));
    const singles = await Promise.all(records.slice(2000).map((r) => producer.put(r)));
    await producer.close();
    const all = [...results, ...singles];
    assert.equal(all.length, 3000);
    for (const r of all) {
      assert.match(r.shardId, /^shardId-/);
      assert.match(r.sequenceNumber, /^\d+$/);
      assert.ok(r.attempts.length >= 1);
      assert.equal(r.attempts.at(-1).errorCode, undefined);
    }
    assert.ok(all.some((r) => r.aggregated), 'aggregation was on');

    const kinesisRecords = await readStream(sim.endpoint, 'intact');
    const expected = records.map((r) => `${r.partitionKey}|${Buffer.from(typeof r.data === 'string' ? Buffer.from(r.data) : r.data).toString('hex')}`).sort();

    // Ours.
    const ours = [];
    for (const kr of kinesisRecords) {
      for (const u of deaggregate(kr)) {
        ours.push({ key: `${u.partitionKey}|${u.data.toString('hex')}`, seq: u.sequenceNumber, sub: u.subSequenceNumber, shard: kr.ShardId });
      }
    }
    assert.deepEqual(ours.map((o) => o.key).sort(), expected);
    // Each PutResult names where the record is.
    const where = new Set(ours.map((o) => `${o.shard}/${o.seq}/${o.sub}`));
    for (const r of all) assert.ok(where.has(`${r.shardId}/${r.sequenceNumber}/${r.subSequenceNumber}`));

    // aws-kinesis-agg's deaggregateSync, with checksums, via Lambda-shaped records.
    const theirs = [];
    for (const kr of kinesisRecords) {
      const lambda = { partitionKey: kr.PartitionKey, sequenceNumber: kr.SequenceNumber, data: Buffer.from(kr.Data).toString('base64') };
      agg.deaggregateSync(lambda, true, (err, users) => {
        assert.ifError(err);
        for (const u of users) theirs.push(`${u.partitionKey}|${Buffer.from(u.data, 'base64').toString('hex')}`);
      });
      // Ours accepts the Lambda shape too.
      assert.equal(deaggregate({ kinesis: lambda }).length, deaggregate(kr).length);
    }
    assert.deepEqual(theirs.sort(), expected);
  });

  test('explicit hash keys and per-record streams', async () => {
    const producer = await Producer.create(sim.options('intact'));
    const r = await producer.put({ partitionKey: 'p', data: 'e', explicitHashKey: 2n ** 127n, streamName: 'many' });
    assert.equal(r.shardId, 'shardId-000000000001');
    await producer.close();
  });
});

describe('stream ARN', () => {
  test('a stream named by its ARN, as the default and per record, gets the records', async () => {
    const arn = 'arn:aws:kinesis:us-east-1:000000000000:stream/byarn';
    const producer = await Producer.create(sim.options(arn, { recordMaxBufferedTime: 20 }));
    const records = makeRecords(200, 'arn');
    const results = await producer.putMany(records);
    results.push(await producer.put({ partitionKey: 'named', data: 'by record', streamName: arn }));
    await producer.close();
    for (const r of results) assert.match(r.shardId, /^shardId-/);
    const got = [];
    for (const kr of await readStream(sim.endpoint, 'byarn')) {
      for (const u of deaggregate(kr)) got.push(`${u.partitionKey}|${u.data.toString()}`);
    }
    const want = records.map((r) => `${r.partitionKey}|${r.data.toString()}`);
    want.push('named|by record');
    assert.deepEqual(got.sort(), want.sort());
  });
});

describe('promises', () => {
  test('each put settles exactly once, putMany keeps order', async () => {
    const producer = await Producer.create(sim.options('many', { recordMaxBufferedTime: 10 }));
    const settled = new Map();
    const ps = [];
    for (let i = 0; i < 2000; i++) {
      const p = producer.put({ partitionKey: `k${i}`, data: `v${i}` });
      p.then(() => settled.set(i, (settled.get(i) ?? 0) + 1), () => settled.set(i, -1000));
      ps.push(p);
    }
    await Promise.all(ps);
    await sleep(50);
    assert.equal(settled.size, 2000);
    for (const n of settled.values()) assert.equal(n, 1);
    const results = await producer.putMany(makeRecords(500, 'order'));
    assert.equal(results.length, 500);
    assert.equal(producer.outstanding, 0);
    const m = producer.metrics();
    assert.equal(m.UserRecordsPut, 2500);
    assert.ok(m.KinesisRecordsPut >= 1);
    assert.equal(typeof m.ErrorsByCode, 'object');
    await producer.close();
  });

  test('strictOrdering reaches kpl-core: each key\'s records land in put order', async () => {
    const producer = await Producer.create(sim.options('many', { strictOrdering: true, aggregationEnabled: false }));
    const results = await producer.putMany(Array.from({ length: 300 }, (_, i) => ({ partitionKey: `s${i % 5}`, data: `${i}` })));
    await producer.close();
    for (let key = 0; key < 5; key++) {
      const seqs = results.filter((_, i) => i % 5 === key).map((r) => BigInt(r.sequenceNumber));
      assert.deepEqual(seqs, [...seqs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    assert.throws(() => new Producer({ strictOrdering: 'sometimes' }), (e) => e instanceof ConfigError && /StrictOrdering/.test(e.message));
  });

  test('put() calls of one turn go over together; flush() right after them covers them', async () => {
    const producer = await Producer.create(sim.options('many', { recordMaxBufferedTime: 60_000 }));
    let settled = 0;
    const ps = [];
    for (let i = 0; i < 5000; i++) {
      // A bad record in the middle of the burst fails alone.
      const record = i === 2500 ? { partitionKey: '', data: 'bad' } : { partitionKey: `t${i % 50}`, data: `burst-${i}` };
      const p = producer.put(record);
      p.then(() => settled++, () => settled++);
      ps.push(p);
    }
    // Nothing was handed over yet, but every record counts as outstanding.
    assert.equal(producer.outstanding, 5000);
    await producer.flush();
    await sleep(0);
    assert.equal(settled, 5000, 'flush resolved before the puts made before it settled');
    const outcomes = await Promise.allSettled(ps);
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(failed.length, 1);
    assert.ok(failed[0].reason instanceof ValidationError);
    assert.equal(failed[0].reason.record.data.toString(), 'bad');
    // Records of one partition key keep their order in the shard.
    const seqs = outcomes
      .map((o, i) => ({ o, i }))
      .filter(({ o, i }) => o.status === 'fulfilled' && i % 50 === 7)
      .map(({ o }) => [BigInt(o.value.sequenceNumber), o.value.subSequenceNumber]);
    for (let k = 1; k < seqs.length; k++) {
      const [a, b] = [seqs[k - 1], seqs[k]];
      assert.ok(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `order broken at ${k}`);
    }
    assert.equal(producer.outstanding, 0);
    await producer.close();
  });

  test('a record object changed after put() or putMany() goes out as it was put', async () => {
    const producer = await Producer.create(sim.options('mutate', { recordMaxBufferedTime: 10 }));
    const one = { partitionKey: 'as-put', data: Buffer.from('one') };
    const p = producer.put(one);
    one.partitionKey = 'changed';
    const many = [{ partitionKey: 'as-put-many', data: Buffer.from('two') }];
    const pm = producer.putMany(many);
    many[0].partitionKey = 'changed';
    await Promise.all([p, pm]);
    await producer.close();
    const keys = [];
    for (const kr of await readStream(sim.endpoint, 'mutate')) {
      for (const u of deaggregate(kr)) keys.push(u.partitionKey);
    }
    assert.deepEqual(keys.sort(), ['as-put', 'as-put-many']);
  });

  test('send() resolves on admission, result later', async () => {
    const producer = await Producer.create(sim.options('many'));
    const { result } = await producer.send({ partitionKey: 'a', data: 'b' });
    assert.ok(result instanceof Promise);
    assert.match((await result).shardId, /^shardId-/);
    await producer.close();
  });
});

describe('backpressure', () => {
  test('tryPut rejects with BufferFullError, put waits for room', async () => {
    const producer = await Producer.create(slow.options('slow', { maxBufferedRecords: 10, recordMaxBufferedTime: 1 }));
    await slow.faults({ latency: 500 });
    try {
      const first = [];
      for (let i = 0; i < 10; i++) first.push(producer.tryPut({ partitionKey: `k${i}`, data: 'x' }));
      let full;
      try {
        producer.tryPut({ partitionKey: 'over', data: 'flow' });
      } catch (e) {
        full = e;
      }
      assert.ok(full instanceof BufferFullError, String(full));
      assert.ok(full instanceof KplError && full instanceof Error);
      assert.equal(full.code, 'BufferFull');
      assert.equal(full.record.partitionKey, 'over');
      assert.equal(full.record.data.toString(), 'flow');
      assert.equal(full.retryable, true);
      assert.equal(producer.outstanding, 10);

      // put waits: it settles only after the first records made room.
      const t0 = Date.now();
      let done = false;
      const waiting = producer.put({ partitionKey: 'late', data: 'y' }).then((r) => { done = true; return r; });
      await sleep(200);
      assert.equal(done, false, 'put settled while the buffer was full');
      const r = await waiting;
      assert.ok(Date.now() - t0 >= 450, `put settled after ${Date.now() - t0} ms`);
      assert.match(r.shardId, /^shardId-/);
      await Promise.all(first);
    } finally {
      await slow.faults({ latency: 0 });
      await producer.close();
    }
  });
});

describe('results on their way to JS', () => {
  test('hold their buffer room until the event loop takes them', async () => {
    const producer = await Producer.create(sim.options('intact', { maxBufferedRecords: 10, recordMaxBufferedTime: 1 }));
    try {
      const first = [];
      for (let i = 0; i < 10; i++) first.push(producer.tryPut({ partitionKey: `held-${i}`, data: 'x' }));
      // Keep the JS thread busy until the pipeline resolved all ten: their
      // results wait in the mailbox, undelivered.
      const deadline = Date.now() + 20_000;
      while (producer.outstanding > 0 && Date.now() < deadline) { /* busy: no event loop turn */ }
      assert.equal(producer.outstanding, 0, 'the pipeline resolved the ten');
      assert.throws(() => producer.tryPut({ partitionKey: 'over', data: 'y' }), BufferFullError,
        'a put found room while ten results were undelivered');
      for (const r of await Promise.all(first)) assert.match(r.shardId, /^shardId-/);
      // Delivered: the room is back.
      const r = await producer.tryPut({ partitionKey: 'after', data: 'z' });
      assert.match(r.shardId, /^shardId-/);
    } finally {
      await producer.close();
    }
  });
});

describe('flush and close', () => {
  test('flush waits for records in flight', async () => {
    const producer = await Producer.create(sim.options('flush', { recordMaxBufferedTime: 60_000 }));
    const ps = makeRecords(300, 'fl').map((r) => producer.put(r));
    await sleep(20);
    assert.equal(producer.outstanding, 300);
    await producer.flush();
    assert.equal(producer.outstanding, 0);
    const results = await Promise.all(ps);
    assert.equal(results.length, 300);
    await producer.close();
  });

  test('close gives up within its timeout on records still waiting for room', async () => {
    // Nothing answers and the buffer holds five: 45 records wait to be
    // admitted, and would for RecordTtl per five. close(300) fails them.
    const producer = await Producer.create(sim.options('close', {
      kinesisEndpoint: await deadEndpoint(), maxBufferedRecords: 5, metricsLevel: 'none',
    }));
    const outcomes = makeRecords(50, 'stuck').map((r) => producer.put(r).then(() => 'delivered', (e) => e));
    await sleep(50);
    const t0 = Date.now();
    await assert.rejects(producer.close(300), ShutDownError);
    assert.ok(Date.now() - t0 < 10_000, `close took ${Date.now() - t0} ms`);
    for (const o of await Promise.all(outcomes)) assert.ok(o instanceof ShutDownError, String(o));
  });

  test('close flushes records in flight, later puts fail with ShutDownError', async () => {
    const producer = await Producer.create(sim.options('close', { recordMaxBufferedTime: 60_000 }));
    const ps = makeRecords(200, 'cl').map((r) => producer.put(r));
    await sleep(20);
    await producer.close();
    const results = await Promise.all(ps);
    assert.equal(results.length, 200);
    await assert.rejects(producer.put({ partitionKey: 'a', data: 'b' }), (e) => e instanceof ShutDownError && e.code === 'ShutDown' && e.record.partitionKey === 'a');
    assert.throws(() => producer.tryPut({ partitionKey: 'a', data: 'b' }), ShutDownError);
    await producer.close(); // twice is fine
  });
});

describe('errors', () => {
  test('validation errors hand the record back', async () => {
    const producer = await Producer.create(sim.options('errors'));
    await assert.rejects(producer.put({ partitionKey: '', data: 'x' }), (e) => e instanceof ValidationError && e.code === 'InvalidRecord' && e.record.partitionKey === '');
    await assert.rejects(producer.put({ partitionKey: 'k'.repeat(257), data: 'x' }), ValidationError);
    await assert.rejects(producer.put({ partitionKey: 'k', data: 42 }), ValidationError);
    await assert.rejects(producer.put({ partitionKey: 'k', data: 'x', explicitHashKey: 'nope' }), ValidationError);
    await assert.rejects(producer.put({ partitionKey: 'k', data: Buffer.alloc(1024 * 1024 + 1) }), ValidationError);
    assert.throws(() => producer.tryPut({ partitionKey: '', data: 'x' }), ValidationError);
    const many = await producer.putMany([{ partitionKey: 'ok', data: '1' }, { partitionKey: '', data: '2' }]).catch((e) => e);
    assert.ok(many instanceof PutManyError);
    assert.equal(many.errors.length, 1);
    assert.match(many.results[0].shardId, /^shardId-/);
    assert.ok(many.results[1] instanceof ValidationError);
    await producer.close();
  });

  test('configuration errors', async () => {
    assert.throws(() => new Producer({ collectionMaxCount: 900 }), (e) => e instanceof ConfigError && /CollectionMaxCount/.test(e.message));
    await assert.rejects(Producer.create({ noSuchSetting: 1 }), ConfigError);
  });

  test('an unknown setting name is its own error, with the closest names', () => {
    assert.throws(() => new Producer({ recordMaxBufferTime: 50 }), (e) => {
      assert.ok(e instanceof UnknownSettingError && e instanceof ConfigError, e.constructor.name);
      assert.equal(e.code, 'UnknownSetting');
      assert.equal(e.setting, 'recordMaxBufferTime');
      assert.deepEqual(e.suggestions, ['RecordMaxBufferedTime']);
      assert.match(e.message, /did you mean RecordMaxBufferedTime/);
      return true;
    });
    // A bad value is a ConfigError naming its setting, not an unknown name.
    assert.throws(() => checkConfig({ recordTtl: 'soon' }),
      (e) => e instanceof ConfigError && !(e instanceof UnknownSettingError) && e.setting === 'RecordTtl');
    assert.equal(checkConfig({ recordTtl: 5000 }).RecordTtl, '5000');
  });

  test('unknown stream fails with ServiceError ResourceNotFoundException', async () => {
    const producer = await Producer.create(sim.options('errors'));
    const e = await producer.put({ partitionKey: 'k', data: 'x', streamName: 'no-such-stream' }).catch((x) => x);
    assert.ok(e instanceof ServiceError, String(e));
    assert.equal(e.code, 'Service');
    assert.equal(e.serviceCode, 'ResourceNotFoundException');
    assert.equal(e.record.streamName, 'no-such-stream');
    assert.equal(e.record.data.toString(), 'x');
    // ListShards said so before anything was sent: no PutRecords attempt.
    assert.equal(e.attempts.length, 0);
    await producer.close();
  });

  test('deaggregate: plain records pass through, bad input throws', () => {
    const out = deaggregate({ PartitionKey: 'p', Data: new TextEncoder().encode('plain'), SequenceNumber: '1' });
    assert.equal(out.length, 1);
    assert.equal(out[0].aggregated, false);
    assert.equal(out[0].data.toString(), 'plain');
    assert.throws(() => deaggregate({ Data: new Uint8Array(1) }), TypeError);
  });
});

describe('configuration', () => {
  test('fromProperties with overrides; CommonJS require gives the same classes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kpl-node-'));
    const path = join(dir, 'kpl.properties');
    writeFileSync(path, `# KPL properties\nRecordMaxBufferedTime = 15000\nRegion = us-east-1\nKinesisEndpoint = ${sim.endpoint}\nAwsAccessKeyId = AKIDLOCALTEST\nAwsSecretAccessKey = local-test-secret\n`);
    const producer = await Producer.fromProperties(path, { streamName: 'props', recordMaxBufferedTime: 20 });
    assert.equal(producer.config().RecordMaxBufferedTime, '20');
    assert.equal(producer.config().StreamName, 'props');
    assert.equal(producer.config().AwsSecretAccessKey, undefined);
    assert.match((await producer.put({ partitionKey: 'a', data: 'b' })).shardId, /^shardId-/);
    await producer.close();
    const cjs = require('../index.js');
    assert.equal(cjs.Producer, Producer);
    await assert.rejects(Producer.fromProperties(join(dir, 'missing.properties')), ConfigError);
  });
});

/** Runs a child node script; resolves {code, ms, stderr}. */
function runChild(source) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'inherit', 'pipe'], cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - t0, stderr });
    });
  });
}

describe('process exit', () => {
  const mod = JSON.stringify(new URL('../index.mjs', import.meta.url).href);
  const opts = () => JSON.stringify(sim.options('exit', { recordMaxBufferedTime: 100 }));

  test('exits by itself after close()', async () => {
    const r = await runChild(`
      import { Producer } from ${mod};
      const p = await Producer.create(${opts()});
      await Promise.all([1,2,3].map((i) => p.put({ partitionKey: 'k' + i, data: 'v' })));
      p.put({ partitionKey: 'last', data: 'in flight at close' });
      await p.close();
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < 8000, `took ${r.ms} ms`);
  });

  test('exits without close(), after its records are delivered', async () => {
    const r = await runChild(`
      import { Producer } from ${mod};
      const p = await Producer.create(${opts()});
      p.put({ partitionKey: 'no-close', data: 'v' }).then((r) => console.error('delivered', r.shardId));
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /delivered shardId-/);
    assert.ok(r.ms < 8000, `took ${r.ms} ms`);
  });

  test('exits without close() and without records', async () => {
    const r = await runChild(`
      import { Producer } from ${mod};
      await Producer.create(${opts()});
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < 8000, `took ${r.ms} ms`);
  });
});
