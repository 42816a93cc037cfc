// Shared helpers: start kpl-sim as a child process, read a stream back.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { NodeHttpHandler } from '@smithy/node-http-handler';
import { KinesisClient, ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand } from '@aws-sdk/client-kinesis';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function kplBin() {
  let path = process.env.KPL_BIN || resolve(process.env.CARGO_TARGET_DIR || resolve(ROOT, 'target'), 'debug', 'kpl');
  if (!isAbsolute(path)) path = resolve(ROOT, path);
  assert.ok(existsSync(path), `kpl binary not found at ${path}: build it (cargo build -p kpl-cli) or set KPL_BIN`);
  return path;
}

export const CREDENTIALS = { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' };

/** Starts `kpl sim`; resolves {endpoint, stop(), faults(json)}. */
export async function startSim(streams, extra = []) {
  const args = ['sim', '--port', '0'];
  for (const s of streams) args.push('--stream', s);
  const proc = spawn(kplBin(), [...args, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise((res, rej) => {
    lines.once('line', res);
    proc.once('exit', (code) => rej(new Error(`kpl sim exited with ${code}`)));
  });
  const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(first);
  assert.ok(m, `unexpected first line from kpl sim: ${first}`);
  lines.on('line', () => {});
  const endpoint = m[1];
  return {
    endpoint,
    options: (stream, more = {}) => ({
      streamName: stream,
      kinesisEndpoint: endpoint,
      region: 'us-east-1',
      awsAccessKeyId: CREDENTIALS.accessKeyId,
      awsSecretAccessKey: CREDENTIALS.secretAccessKey,
      ...more,
    }),
    async faults(body) {
      const res = await fetch(`${endpoint}/_sim/faults`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, await res.text());
    },
    stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
    },
  };
}

export function kinesisClient(endpoint) {
  return new KinesisClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1,
    // Kinesis' client defaults to HTTP/2; the simulator speaks HTTP/1.1.
    requestHandler: new NodeHttpHandler() });
}

/** Every Kinesis record in the stream, read from TRIM_HORIZON per shard. */
export async function readStream(endpoint, stream) {
  const client = kinesisClient(endpoint);
  try {
    const { Shards } = await client.send(new ListShardsCommand({ StreamName: stream }));
    const out = [];
    for (const shard of Shards) {
      let { ShardIterator: it } = await client.send(new GetShardIteratorCommand({
        StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON',
      }));
      for (;;) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10000 }));
        for (const r of page.Records) out.push({ ...r, ShardId: shard.ShardId });
        if (page.Records.length === 0 || !page.NextShardIterator) break;
        it = page.NextShardIterator;
      }
    }
    return out;
  } finally {
    client.destroy();
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An endpoint nothing listens on: every connection is refused. */
export async function deadEndpoint() {
  const server = createServer();
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address();
  await new Promise((res) => server.close(res));
  return `http://127.0.0.1:${port}`;
}
