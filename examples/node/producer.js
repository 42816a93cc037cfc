// A producer script: puts N records and prints where they went.
//
//   kpl sim --stream demo:4 &                       # or a real stream
//   KINESIS_ENDPOINT=http://127.0.0.1:4567 node examples/node/producer.js demo 1000
//
// Credentials and region come from the AWS default chain unless set here.
'use strict';

const { Producer, KplError } = require('kpl-rs');

async function main() {
  const stream = process.argv[2] || 'demo';
  const count = Number(process.argv[3] || 1000);
  const endpoint = process.env.KINESIS_ENDPOINT;
  /** @type {import('kpl-rs').ProducerOptions} */
  const options = {
    streamName: stream,
    region: process.env.AWS_REGION || 'us-east-1',
    recordMaxBufferedTime: 100,
  };
  if (endpoint) {
    options.kinesisEndpoint = endpoint;
    options.awsAccessKeyId = process.env.AWS_ACCESS_KEY_ID || 'AKIDLOCALTEST';
    options.awsSecretAccessKey = process.env.AWS_SECRET_ACCESS_KEY || 'local-test-secret';
  }
  const producer = await Producer.create(options);
  const records = Array.from({ length: count }, (_, i) => ({
    partitionKey: `device-${i % 100}`,
    data: JSON.stringify({ seq: i, at: new Date().toISOString() }),
  }));
  const started = Date.now();
  try {
    const results = await producer.putMany(records);
    const shards = new Map();
    for (const r of results) shards.set(r.shardId, (shards.get(r.shardId) || 0) + 1);
    console.log(`${results.length} records in ${Date.now() - started} ms`, Object.fromEntries(shards));
  } catch (e) {
    if (e instanceof KplError) console.error(`failed: ${e.code} ${e.serviceCode || ''} ${e.message}`);
    throw e;
  } finally {
    await producer.close();
  }
  const m = producer.metrics();
  console.log(`UserRecordsPut=${m.UserRecordsPut} KinesisRecordsPut=${m.KinesisRecordsPut} PutRecordsRequests=${m.PutRecordsRequests}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
