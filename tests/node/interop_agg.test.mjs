// Our aggregation format against the official Node library (npm aws-kinesis-agg).
//
// Both directions, with our side driven through the `kpl` CLI (KPL_BIN):
//   * `kpl agg` output -> deaggregateSync (Lambda event record shape:
//     {partitionKey, sequenceNumber, data: base64}) -> exactly the input;
//   * aggregate() / RecordAggregator output -> `kpl deagg` -> exactly the input;
//   * for the same records in one aggregate, both write the same bytes.
//
// Known bugs of aws-kinesis-agg 4.2.8 pinned by the "quirk" tests:
//   * its aggregator builds the key tables with Object.keys(), which lists
//     integer-like strings ("0", "17", ...) first, in numeric order, while the
//     indexes were assigned in order of first use: partition keys and
//     explicit hash keys such as "1" or "0" come out swapped with others;
//   * its size estimate counts partition and hash keys in UTF-16 code units,
//     not UTF-8 bytes, so aggregates with non-ASCII keys can exceed 1 MiB;
//   * its deaggregator gives a record without an explicit hash key the
//     first key of the aggregate's table (explicitPartitionKey), as the
//     Python library does.
// Run: KPL_BIN=target/debug/kpl node --test tests/node/

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import agg from 'aws-kinesis-agg';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_HASH_KEY = (2n ** 128n - 1n).toString();
const MAGIC = Buffer.from('f3899ac2', 'hex');

function kplBin() {
  let path = process.env.KPL_BIN || resolve(ROOT, 'target', 'debug', 'kpl');
  if (!isAbsolute(path)) path = resolve(ROOT, path);
  assert.ok(existsSync(path), `kpl binary not found at ${path}: build it or set KPL_BIN`);
  return path;
}

function runKpl(args, input) {
  const proc = spawnSync(kplBin(), args, { input, maxBuffer: 1 << 30, timeout: 300_000 });
  assert.equal(proc.error, undefined, String(proc.error));
  return proc;
}

const rec = (pk, data, ehk) => ({ pk, data: Buffer.from(data), ehk });

/** `kpl agg`; returns [{PartitionKey, ExplicitHashKey, Data: Buffer}]. */
function kplAgg(records, ...args) {
  const input = records
    .map((r) => JSON.stringify({
      PartitionKey: r.pk,
      Data: r.data.toString('base64'),
      ...(r.ehk !== undefined ? { ExplicitHashKey: r.ehk } : {}),
    }))
    .join('\n') + '\n';
  const proc = runKpl(['agg', ...args], input);
  assert.equal(proc.status, 0, proc.stderr.toString());
  return proc.stdout.toString().split('\n').filter(Boolean).map((line) => {
    const o = JSON.parse(line);
    return { PartitionKey: o.PartitionKey, ExplicitHashKey: o.ExplicitHashKey, Data: Buffer.from(o.Data, 'base64') };
  });
}

/** `kpl deagg` of [{PartitionKey, ExplicitHashKey?, Data: Buffer, SequenceNumber}]. */
function kplDeagg(kinesisRecords, ...args) {
  const input = kinesisRecords
    .map((k) => JSON.stringify({
      PartitionKey: k.PartitionKey,
      Data: k.Data.toString('base64'),
      SequenceNumber: k.SequenceNumber,
      ...(k.ExplicitHashKey !== undefined ? { ExplicitHashKey: k.ExplicitHashKey } : {}),
    }))
    .join('\n') + '\n';
  const proc = runKpl(['deagg', ...args], input);
  const users = proc.stdout.toString().split('\n').filter(Boolean).map((line) => {
    const o = JSON.parse(line);
    return {
      pk: o.PartitionKey, ehk: o.ExplicitHashKey ?? undefined, data: Buffer.from(o.Data, 'base64'),
      seq: o.SequenceNumber, subseq: o.SubSequenceNumber,
    };
  });
  return { status: proc.status, users, stderr: proc.stderr.toString() };
}

/** deaggregateSync on a Lambda-event-shaped record; returns the user records. */
function nodeDeaggregate(kinesisRecord, sequenceNumber) {
  const lambdaRecord = {
    kinesisSchemaVersion: '1.0',
    partitionKey: kinesisRecord.PartitionKey,
    sequenceNumber,
    data: kinesisRecord.Data.toString('base64'),
    approximateArrivalTimestamp: 1735689600.0,
  };
  let result;
  agg.deaggregateSync(lambdaRecord, true, (err, users) => {
    assert.ifError(err);
    result = users;
  });
  assert.ok(result, 'deaggregateSync did not call back');
  return result;
}

const md5HashKey = (pk) => BigInt('0x' + createHash('md5').update(pk, 'utf8').digest('hex')).toString();

/** What the node deaggregator reports as a record's explicit hash key (quirk: the table's first). */
const expectedNodeEhk = (r, group) => r.ehk ?? group.find((g) => g.ehk !== undefined)?.ehk;

function checkNodeReadsOurs(inputs, kinesisRecords, maxSize = 51_200) {
  let position = 0;
  kinesisRecords.forEach((k, n) => {
    const users = nodeDeaggregate(k, String(5000 + n));
    const group = inputs.slice(position, position + users.length);
    assert.equal(group.length, users.length, 'more user records came out than went in');
    if (k.Data.subarray(0, 4).equals(MAGIC)) {
      assert.ok(users.length >= 2);
      assert.ok(k.Data.length <= maxSize, `aggregate of ${k.Data.length} bytes`);
      assert.equal(k.PartitionKey, 'a');
      assert.equal(k.ExplicitHashKey, group[0].ehk ?? md5HashKey(group[0].pk));
      users.forEach((u, i) => {
        assert.equal(u.subSequenceNumber, i);
        assert.equal(u.sequenceNumber, String(5000 + n));
        assert.equal(u.partitionKey, group[i].pk);
        assert.ok(Buffer.from(u.data, 'base64').equals(group[i].data), `data of record ${position + i}`);
        assert.equal(u.explicitPartitionKey, expectedNodeEhk(group[i], group));
      });
    } else {
      // A lone record travels plain with its own keys.
      assert.equal(users.length, 1);
      assert.equal(k.PartitionKey, group[0].pk);
      assert.equal(k.ExplicitHashKey, group[0].ehk);
      assert.equal(users[0].partitionKey, group[0].pk);
      assert.ok(Buffer.from(users[0].data, 'base64').equals(group[0].data));
    }
    position += users.length;
  });
  assert.equal(position, inputs.length, 'user records were lost');
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randomBytes = (next, n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
const randomHashKey = (next) => (BigInt(Math.floor(next() * 2 ** 32)) * (2n ** 96n) + BigInt(Math.floor(next() * 2 ** 32))).toString();

// No integer-like keys here: the npm aggregator mangles those (see the quirk test).
function assortedRecords() {
  return [
    rec('plain-key', 'hello'),
    rec('ключ-🔑-キー', 'données 🚀'),
    rec('🙂'.repeat(256), 'partition key of 256 emoji'),
    rec('empty-data', ''),
    rec('zero-ehk', [0, 1, 2], '0'),
    rec('max-ehk', Buffer.alloc(10, 0xff), MAX_HASH_KEY),
    rec('plain-key', 'same key again'),
    rec('zero-ehk', 'same ehk again', '0'),
    rec('another', Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    rec('a', "a user key equal to the aggregate's outer key"),
  ];
}

// ------------------------------------------------------ ours -> theirs --

test('deaggregateSync reads an aggregate of assorted records from kpl agg', () => {
  const inputs = assortedRecords();
  const out = kplAgg(inputs);
  assert.equal(out.length, 1);
  checkNodeReadsOurs(inputs, out);
});

test('deaggregateSync passes a lone plain record from kpl agg through', () => {
  const inputs = [rec('alone', 'just me', '12345')];
  const out = kplAgg(inputs);
  assert.deepEqual(out.map((k) => [k.PartitionKey, k.ExplicitHashKey]), [['alone', '12345']]);
  checkNodeReadsOurs(inputs, out);
});

test('deaggregateSync reads thousands of records across kpl aggregates', () => {
  const next = rng(2025);
  const keys = Array.from({ length: 300 }, (_, i) => `user-${i}-${'é'.repeat(i % 5)}`);
  const sizes = [0, 1, 10, 100, 1000, 5000];
  const inputs = Array.from({ length: 6000 }, () => rec(
    keys[Math.floor(next() * keys.length)],
    randomBytes(next, sizes[Math.floor(next() * sizes.length)]),
    next() < 0.1 ? randomHashKey(next) : undefined,
  ));
  const out = kplAgg(inputs);
  assert.ok(out.length > 10);
  checkNodeReadsOurs(inputs, out);
});

test('deaggregateSync reads an aggregate filled to exactly 51200 bytes', () => {
  // 20 + 3 (key table "k") + 21 records of 2437 bytes = 51200.
  const inputs = Array.from({ length: 22 }, (_, i) => rec('k', Buffer.alloc(2429, i)));
  const out = kplAgg(inputs);
  assert.equal(out.length, 2);
  assert.equal(out[0].Data.length, 51_200);
  checkNodeReadsOurs(inputs, out);
});

test('deaggregateSync reads 1 MiB records in a 10 MiB kpl aggregate', () => {
  const mib = 1 << 20;
  const inputs = [
    rec('big-1', Buffer.alloc(mib - 5, 0xab)),
    rec('🐘', Buffer.alloc(mib - 4, 0xcd)),
    rec('small', 'tiny'),
    rec('big-2', Buffer.alloc(mib - 5, 0xef), MAX_HASH_KEY),
  ];
  const out = kplAgg(inputs, '--max-size', '10485760');
  assert.equal(out.length, 1);
  checkNodeReadsOurs(inputs, out, 10_485_760);
});

// ------------------------------------------------------ theirs -> ours --

/** aws-kinesis-agg's aggregate(); resolves to its encoded records. */
function nodeAggregate(inputs) {
  return new Promise((resolvePromise, reject) => {
    const encoded = [];
    agg.aggregate(
      inputs.map((r) => ({ partitionKey: r.pk, data: r.data, ...(r.ehk !== undefined ? { explicitHashKey: r.ehk } : {}) })),
      (record, done) => { encoded.push(record); done(); },
      () => resolvePromise(encoded),
      (err) => reject(err),
    );
  });
}

const asKinesis = (encoded) => encoded.map((e, i) => ({
  PartitionKey: e.partitionKey,
  ExplicitHashKey: e.ExplicitHashKey,
  Data: e.data,
  SequenceNumber: String(100 + i),
}));

async function checkKplReadsTheirs(inputs) {
  const encoded = await nodeAggregate(inputs);
  const { status, users, stderr } = kplDeagg(asKinesis(encoded));
  assert.equal(status, 0, stderr);
  assert.equal(users.length, inputs.length);
  users.forEach((u, i) => {
    assert.equal(u.pk, inputs[i].pk, `partition key of record ${i}`);
    assert.equal(u.ehk, inputs[i].ehk, `explicit hash key of record ${i}`);
    assert.ok(u.data.equals(inputs[i].data), `data of record ${i}`);
  });
  return { encoded, users };
}

test('kpl deagg reads assorted records aggregated by aggregate()', async () => {
  const { encoded, users } = await checkKplReadsTheirs(assortedRecords());
  assert.equal(encoded.length, 1);
  assert.deepEqual(users.map((u) => u.subseq), users.map((_, i) => i));
});

test('kpl deagg reads thousands of records aggregated by aggregate() into several records', async () => {
  const next = rng(7);
  const keys = Array.from({ length: 200 }, (_, i) => `ключ-${i}`);
  const inputs = Array.from({ length: 3000 }, () => rec(
    keys[Math.floor(next() * keys.length)],
    randomBytes(next, [0, 5, 500, 3000][Math.floor(next() * 4)]),
    next() < 0.2 ? randomHashKey(next) : undefined,
  ));
  const { encoded, users } = await checkKplReadsTheirs(inputs);
  assert.ok(encoded.length >= 2, `${encoded.length} aggregates`);
  // Sub-sequence numbers restart in each Kinesis record.
  let expected = [];
  for (const [i, e] of encoded.entries()) {
    const count = kplDeagg(asKinesis([e])).users.length;
    expected = expected.concat(Array.from({ length: count }, (_, s) => [String(100 + i), s]));
  }
  assert.deepEqual(users.map((u) => [u.seq, u.subseq]), expected);
});

test('kpl deagg reads RecordAggregator.build() output', () => {
  const aggregator = new agg.RecordAggregator();
  const inputs = [rec('r1', 'one'), rec('r2', '', MAX_HASH_KEY), rec('r1', 'three')];
  for (const r of inputs) {
    aggregator.addUserRecord({ partitionKey: r.pk, data: r.data, ...(r.ehk ? { explicitHashKey: r.ehk } : {}) });
  }
  const built = aggregator.build();
  const { status, users, stderr } = kplDeagg([{ PartitionKey: built.partitionKey, Data: built.data, SequenceNumber: '1' }]);
  assert.equal(status, 0, stderr);
  assert.deepEqual(users.map((u) => [u.pk, u.ehk, u.data.toString()]), inputs.map((r) => [r.pk, r.ehk, r.data.toString()]));
});

// ------------------------------------------------------- same bytes out --

test('kpl agg writes the same bytes as aggregate() for the same records', async () => {
  const next = rng(99);
  const cases = [
    assortedRecords(),
    Array.from({ length: 100 }, (_, i) => rec(`k${i % 3}`, `v${i}`)),
    Array.from({ length: 150 }, (_, i) => rec(`k${i}`, randomBytes(next, Math.floor(next() * 400)), randomHashKey(next))),
    Array.from({ length: 300 }, () => rec('same', '')),
    Array.from({ length: 200 }, (_, i) => rec(`key${i}`, 'd', i % 2 ? undefined : `${2n ** 64n + BigInt(i)}`)),
  ];
  for (const inputs of cases) {
    const theirs = await nodeAggregate(inputs);
    assert.equal(theirs.length, 1);
    const ours = kplAgg(inputs, '--max-size', '10485760');
    assert.equal(ours.length, 1);
    assert.ok(ours[0].Data.equals(theirs[0].data), 'aggregate bytes differ');
    // Outer keys differ on purpose: theirs are the first record's own.
    assert.equal(ours[0].PartitionKey, 'a');
    assert.equal(theirs[0].partitionKey, inputs[0].pk);
  }
});

// -------------------------------------------------- library bugs pinned --

test('quirk: the npm aggregator swaps integer-like partition and hash keys', async () => {
  const inputs = [
    rec('b', 'first'),
    rec('1', 'second'),
    rec('c', 'third', MAX_HASH_KEY),
    rec('c', 'fourth', '0'),
  ];
  const encoded = await nodeAggregate(inputs);
  const { status, users } = kplDeagg(asKinesis(encoded));
  assert.equal(status, 0);
  // Object.keys() put "1" before "b" and "0" before the big hash key.
  assert.deepEqual(users.map((u) => [u.pk, u.ehk]), [['1', undefined], ['b', undefined], ['c', '0'], ['c', MAX_HASH_KEY]]);
  // kpl agg keeps them right, and the node deaggregator reads ours right.
  const ours = kplAgg(inputs);
  const back = nodeDeaggregate(ours[0], '1');
  assert.deepEqual(back.map((u) => u.partitionKey), ['b', '1', 'c', 'c']);
  assert.deepEqual(back.slice(2).map((u) => u.explicitPartitionKey), [MAX_HASH_KEY, '0']);
});

test('quirk: the npm aggregator counts keys in UTF-16 units and overfills 1 MiB', async () => {
  const inputs = Array.from({ length: 1500 }, (_, i) => rec('🙂'.repeat(250) + String(i).padStart(6, '0'), 'x'));
  const theirs = await nodeAggregate(inputs);
  assert.equal(theirs.length, 1);
  assert.ok(theirs[0].data.length > (1 << 20), `${theirs[0].data.length} bytes`);
  const ours = kplAgg(inputs, '--max-size', String(1 << 20));
  assert.equal(ours.length, 2);
  assert.ok(ours.every((k) => k.Data.length <= (1 << 20)));
  checkNodeReadsOurs(inputs, ours, 1 << 20);
});

test('quirk: deaggregateSync gives records without a hash key the table\'s first', () => {
  const inputs = [rec('no-ehk-1', '1'), rec('with', '2', '42'), rec('no-ehk-2', '3')];
  const out = kplAgg(inputs);
  const users = nodeDeaggregate(out[0], '1');
  assert.deepEqual(users.map((u) => u.explicitPartitionKey), ['42', '42', '42']);
  const { users: ours } = kplDeagg([{ ...out[0], SequenceNumber: '1' }]);
  assert.deepEqual(ours.map((u) => u.ehk), [undefined, '42', undefined]);
});
