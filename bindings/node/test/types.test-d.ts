// Type test: compiled by `tsc --noEmit` (never run). Uses of the public
// API that must type-check, and misuses that must not (@ts-expect-error).
import {
  Producer, deaggregate, KplError, BufferFullError, ServiceError, PutManyError,
  type PutResult, type ProducerOptions, type UserRecord, type DeaggregatedRecord, type Metrics,
} from 'kpl-rs';
import type { _Record as SdkRecord } from '@aws-sdk/client-kinesis';

async function usage(): Promise<void> {
  const options: ProducerOptions = {
    streamName: 'orders',
    region: 'eu-west-1',
    kinesisEndpoint: 'http://127.0.0.1:4567',
    recordMaxBufferedTime: 50,
    aggregationEnabled: true,
    awsAccessKeyId: 'AKID',
    awsSecretAccessKey: 'secret',
  };
  const producer: Producer = await Producer.create(options);
  const fromFile: Producer = await Producer.fromProperties('kpl.properties', { streamName: 'x' });
  const record: UserRecord = { partitionKey: 'k', data: Buffer.from('x'), explicitHashKey: 1n };
  const r: PutResult = await producer.put(record);
  const shard: string = r.shardId;
  const sub: number = r.subSequenceNumber;
  const delay: number = r.attempts[0].delayMs;
  const code: string | undefined = r.attempts[0].errorCode;
  await producer.put({ partitionKey: 'k', data: 'text' });
  await producer.put({ partitionKey: 'k', data: new Uint8Array(3), streamName: 'other' });
  const many: PutResult[] = await producer.putMany([record, record]);
  const { result } = await producer.send(record);
  const later: PutResult = await result;
  try {
    const p: Promise<PutResult> = producer.tryPut(record);
    await p;
  } catch (e) {
    if (e instanceof BufferFullError) {
      const again: UserRecord | undefined = e.record;
      const kind: string = e.code;
      void again; void kind;
    }
    if (e instanceof ServiceError) {
      const sc: string | undefined = e.serviceCode;
      void sc;
    }
    if (e instanceof PutManyError) {
      const first: PutResult | KplError = e.results[0];
      void first;
    }
  }
  const n: number = producer.outstanding;
  const m: Metrics = producer.metrics();
  const put: number = m.UserRecordsPut;
  const byCode: Record<string, number> = m.ErrorsByCode;
  await producer.flush();
  await producer.close(5000);
  await fromFile.close();

  const sdkRecord: SdkRecord = { PartitionKey: 'p', Data: new Uint8Array(), SequenceNumber: '1' };
  const users: DeaggregatedRecord[] = deaggregate(sdkRecord);
  const lambda = deaggregate({ kinesis: { partitionKey: 'p', data: 'AAAA', sequenceNumber: '1' } });
  const bytes: Buffer = lambda[0].data;

  // @ts-expect-error partitionKey is required
  await producer.put({ data: 'x' });
  // @ts-expect-error data must be bytes or a string
  await producer.put({ partitionKey: 'k', data: 42 });
  // @ts-expect-error outstanding is read-only
  producer.outstanding = 3;

  void [shard, sub, delay, code, many, later, n, put, byCode, users, bytes];
}
void usage;
