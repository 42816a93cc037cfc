// The durable spool from Node: settings by name, records a stopped
// producer left sent first by the next, the lock, SpoolError.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Producer, deaggregate, ShutDownError, SpoolError } from '../index.mjs';
import { deadEndpoint, readStream, startSim } from './helpers.mjs';

let sim;
before(async () => {
  sim = await startSim(['spooled:1'], ['--unlimited']);
});
after(() => sim?.stop());

test('records a stopped producer could not send are sent first by the next', async () => {
  const spoolDirectory = join(mkdtempSync(join(tmpdir(), 'kpl-node-spool-')), 'spool');
  const down = sim.options('spooled', {
    kinesisEndpoint: await deadEndpoint(), spoolDirectory, spoolSync: 'always', metricsLevel: 'none',
  });
  const first = await Producer.create(down);
  await assert.rejects(Producer.create(down), (e) => e instanceof SpoolError && /in use by another producer/.test(e.message));
  const outcomes = [];
  for (let i = 0; i < 100; i++) {
    // Settled as they come: each fails with ShutDownError when close gives up.
    outcomes.push(first.put({ partitionKey: `k${i % 3}`, data: String(i).padStart(4, '0') }).then(() => 'delivered', (e) => e));
  }
  await assert.rejects(first.close(300));
  for (const outcome of await Promise.all(outcomes)) assert.ok(outcome instanceof ShutDownError, String(outcome));

  const again = await Producer.create(sim.options('spooled', { spoolDirectory, metricsLevel: 'none' }));
  assert.equal(again.metrics().SpoolRecordsRecovered, 100);
  await again.put({ partitionKey: 'k0', data: 'new!' });
  await again.flush();
  assert.equal(again.metrics().SpoolRecords, 0);
  await again.close();
  const data = [];
  for (const kr of await readStream(sim.endpoint, 'spooled')) {
    for (const u of deaggregate(kr)) data.push(u.data.toString());
  }
  const want = Array.from({ length: 100 }, (_, i) => String(i).padStart(4, '0'));
  assert.deepEqual(data, [...want, 'new!']);
});
