// The conformance cases (tests/conformance/cases.tsv, whose header says
// what each line means) from Node, against kpl-sim. Rust, C and Python run
// the same file and must see the same outcomes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Producer, KplError, UnknownSettingError, checkConfig } from '../index.mjs';
import { ROOT, startSim } from './helpers.mjs';

const CASES = join(ROOT, 'tests', 'conformance', 'cases.tsv');

/** `-` is none; `TEXT*N` is TEXT repeated N times. */
function value(field) {
  if (field === '-') return undefined;
  const m = /^(.*)\*(\d+)$/s.exec(field);
  return m ? m[1].repeat(Number(m[2])) : field;
}

function errorOutcome(e) {
  if (!(e instanceof KplError)) throw e;
  if (e instanceof UnknownSettingError && e.suggestions.length > 0) return `UnknownSetting:${e.suggestions[0]}`;
  return e.code;
}

let sim;
before(async () => { sim = await startSim(['main:2']); });
after(() => sim?.stop());

const base = (stream, more = {}) => sim.options(stream, { recordTtl: 10000, metricsLevel: 'none', recordMaxBufferedTime: 20, ...more });

function runSet(name, text, want) {
  let config;
  try {
    config = checkConfig({ [name]: text });
  } catch (e) {
    return errorOutcome(e);
  }
  const kplName = want.includes('=') ? want.slice(0, want.indexOf('=')) : name;
  return `${kplName}=${config[kplName] ?? ''}`;
}

async function runRecord(producer, partitionKey, data, explicitHashKey) {
  let result;
  try {
    result = producer.tryPut({ partitionKey, data, explicitHashKey });
  } catch (e) {
    return errorOutcome(e);
  }
  try {
    await result;
    return 'Delivered';
  } catch (e) {
    return `Failed:${errorOutcome(e)}`;
  }
}

async function runFailed(stream, partitionKey) {
  const producer = await Producer.create(base(stream));
  try {
    await producer.put({ partitionKey, data: 'x' });
    return 'Delivered';
  } catch (e) {
    return `${errorOutcome(e)}:${e.serviceCode ?? '-'}\t${e.record?.streamName ?? '-'}`;
  } finally {
    await producer.close(5000);
  }
}

async function runOrder(n, buffered, aggregation) {
  const producer = await Producer.create(base('main', {
    strictOrdering: true, maxBufferedRecords: buffered, aggregationEnabled: aggregation,
  }));
  let results;
  try {
    results = await producer.putMany(Array.from({ length: n }, (_, i) => ({ partitionKey: 'k', data: String(i) })));
  } catch (e) {
    const i = e.results?.findIndex((r) => r instanceof Error) ?? -1;
    return `record ${i} failed: ${errorOutcome(e.errors?.[0] ?? e)}`;
  } finally {
    await producer.close(5000);
  }
  const at = (r) => [r.sequenceNumber.length, r.sequenceNumber, r.subSequenceNumber];
  const below = (a, b) => a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
  for (let i = 1; i < results.length; i++) {
    if (!below(at(results[i - 1]), at(results[i]))) return `record ${i} stored before record ${i - 1}`;
  }
  return 'in-order';
}

test('every conformance case has its outcome', async () => {
  const main = await Producer.create(base('main'));
  const failures = [];
  let ran = 0;
  const lines = readFileSync(CASES, 'utf8').split('\n');
  try {
    for (const [i, line] of lines.entries()) {
      if (line === '' || line.startsWith('#')) continue;
      const f = line.split('\t');
      let got;
      let want;
      if (f[0] === 'set' && f.length === 4) {
        [got, want] = [runSet(f[1], f[2], f[3]), f[3]];
      } else if (f[0] === 'record' && f.length === 5) {
        [got, want] = [await runRecord(main, value(f[1]), value(f[2]), value(f[3])), f[4]];
      } else if (f[0] === 'failed' && f.length === 5) {
        [got, want] = [await runFailed(f[1], f[2]), `${f[3]}\t${f[4]}`];
      } else if (f[0] === 'order' && f.length === 4) {
        [got, want] = [await runOrder(Number(f[1]), f[2], f[3]), 'in-order'];
      } else {
        assert.fail(`cases.tsv:${i + 1}: cannot read ${JSON.stringify(line)}`);
      }
      ran++;
      if (got !== want) failures.push(`cases.tsv:${i + 1}: ${JSON.stringify(line)}: got ${JSON.stringify(got)}`);
    }
  } finally {
    await main.close(5000);
  }
  console.log(`node conformance: ${ran} cases, ${failures.length} failed`);
  assert.deepEqual(failures, []);
  assert.ok(ran >= 30, `only ${ran} cases ran`);
});
