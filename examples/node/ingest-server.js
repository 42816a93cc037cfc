// An HTTP ingest server: each POST body becomes one record; the answer is
// the record's result (or its error) as JSON.
//
//   kpl sim --stream events:4 &
//   KINESIS_ENDPOINT=http://127.0.0.1:4567 node examples/node/ingest-server.js events 8080
//   curl -d '{"hello":"world"}' -H 'x-partition-key: user-1' http://127.0.0.1:8080/
'use strict';

const http = require('node:http');
const { Producer, KplError, BufferFullError, ValidationError } = require('kpl-rs');

const MAX_BODY = 1024 * 1024;

/** @param {http.IncomingMessage} req @returns {Promise<Buffer>} */
function readBody(req) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    req.on('data', (/** @type {Buffer} */ c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function main() {
  const stream = process.argv[2] || 'events';
  const port = Number(process.argv[3] || 8080);
  const endpoint = process.env.KINESIS_ENDPOINT;
  const producer = await Producer.create({
    streamName: stream,
    region: process.env.AWS_REGION || 'us-east-1',
    recordMaxBufferedTime: 50,
    // Requests wait at most 2 s for buffer room, then get a 503.
    userRecordTimeoutInMillis: 2000,
    ...(endpoint ? {
      kinesisEndpoint: endpoint,
      awsAccessKeyId: process.env.AWS_ACCESS_KEY_ID || 'AKIDLOCALTEST',
      awsSecretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'local-test-secret',
    } : {}),
  });

  const server = http.createServer(async (req, res) => {
    if (req.method !== 'POST') return reply(res, 405, { error: 'POST a record body' });
    try {
      const body = await readBody(req);
      const partitionKey = String(req.headers['x-partition-key'] || req.socket.remoteAddress || 'anonymous');
      // Waits while the buffer is full: slow clients instead of growing memory.
      const result = await producer.put({ partitionKey, data: body });
      reply(res, 200, result);
    } catch (e) {
      if (e instanceof ValidationError) return reply(res, 400, { error: e.code, message: e.message });
      if (e instanceof BufferFullError) return reply(res, 503, { error: e.code, message: e.message });
      if (e instanceof KplError) return reply(res, 502, { error: e.code, serviceCode: e.serviceCode, message: e.message });
      reply(res, 500, { error: String(e) });
    }
  });
  server.listen(port, '127.0.0.1', () => console.log(`ingest server on http://127.0.0.1:${port}/ -> stream ${stream}`));

  const stop = async () => {
    server.close();
    await producer.close(10_000);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
