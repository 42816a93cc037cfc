'use strict';
// User records from JS values, and the columns put() and putMany() pack.

const { toError } = require('./errors');

/** Records, and bytes of data, per native call of putMany. */
const PUT_MANY_CHUNK = 4096;
const PUT_MANY_CHUNK_BYTES = 4 * 1024 * 1024;

function toBytes(data, what = 'data') {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`${what} must be a Buffer, Uint8Array, ArrayBuffer or string`);
}

function validationError(message, record) {
  return toError({ kind: 'InvalidRecord', message, retryable: false, record, attempts: [] });
}

/**
 * Checks the shape of a record put from JS and returns its data as bytes,
 * or throws ValidationError. (The values themselves, key length, data size
 * and hash key range, are kpl-core's to check.)
 */
function recordBytes(record) {
  if (record === null || typeof record !== 'object') {
    throw validationError('a record must be an object {partitionKey, data, streamName?, explicitHashKey?}');
  }
  const { partitionKey, data, streamName, explicitHashKey: ehk } = record;
  if (typeof partitionKey !== 'string') {
    throw validationError('partitionKey must be a string', record);
  }
  let bytes;
  try {
    bytes = toBytes(data);
  } catch (e) {
    throw validationError(e.message, record);
  }
  if (streamName != null && typeof streamName !== 'string') {
    throw validationError('streamName must be a string', record);
  }
  if (ehk != null && typeof ehk !== 'string' && typeof ehk !== 'bigint') {
    throw validationError('explicitHashKey must be a decimal string or a bigint', record);
  }
  return bytes;
}

/** A checked record's explicit hash key as a decimal string, or undefined. */
function hashKeyOf(record) {
  const ehk = record.explicitHashKey;
  return ehk == null ? undefined : typeof ehk === 'bigint' ? ehk.toString() : ehk;
}

/** Checks the shape of a record put from JS; returns [pk, data, stream, ehk] or throws. */
function unpack(record) {
  const bytes = recordBytes(record);
  return [record.partitionKey, bytes, record.streamName ?? undefined, hashKeyOf(record)];
}

let packing = Buffer.allocUnsafe(0);

/**
 * A buffer of at least `size` bytes to pack a chunk into, reused from one
 * chunk to the next: the native putMany copies what it needs before it
 * returns, and a fresh buffer per chunk (hundreds of KB) costs an
 * allocation and page faults each time. Valid until the next call.
 */
function scratch(size) {
  if (packing.byteLength < size) packing = Buffer.allocUnsafe(Math.max(size, 2 * packing.byteLength));
  return packing;
}

/**
 * Writes `key` as UTF-8 into `buf` at `at`; returns the bytes written.
 * Short ASCII keys (the usual partition key) are copied here, which costs
 * less than a call into Buffer#write per record.
 */
function writeKey(buf, key, at) {
  const n = key.length;
  if (n <= 64) {
    let i = 0;
    for (; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) break;
      buf[at + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(key, at);
}

/**
 * Records taken column by column when they are put (so a record object
 * changed afterwards does not change what is sent), packed into chunks for
 * the native putMany.
 */
class Columns {
  constructor() {
    this.keys = [];
    this.datas = [];
    this.streams = null; // one entry per record once any record has one
    this.ehks = null;
  }

  get length() {
    return this.keys.length;
  }

  /** Adds a checked record whose data is `bytes`. */
  push(record, bytes) {
    const k = this.keys.length;
    this.keys.push(record.partitionKey);
    this.datas.push(bytes);
    const stream = record.streamName ?? undefined;
    if (this.streams !== null) this.streams.push(stream);
    else if (stream !== undefined) (this.streams = new Array(k).fill(undefined)).push(stream);
    const ehk = hashKeyOf(record);
    if (this.ehks !== null) this.ehks.push(ehk);
    else if (ehk !== undefined) (this.ehks = new Array(k).fill(undefined)).push(ehk);
  }

  /**
   * Packs records `from..` for one native putMany call: at most
   * PUT_MANY_CHUNK records and about PUT_MANY_CHUNK_BYTES of data. Each
   * record's partition key (UTF-8) and data go into one buffer; `offsets`
   * holds 2 per record (key start, data start) and the end. `next` is the
   * first record left out. `packed` is shared: hand it to the native
   * side (which copies it) before packing the next chunk. Each range is
   * packed once: the columns let go of what they packed.
   */
  chunk(from) {
    const { keys, datas, streams, ehks } = this;
    let upTo = from;
    let room = 0;
    while (upTo < keys.length && upTo - from < PUT_MANY_CHUNK && room < PUT_MANY_CHUNK_BYTES) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit.
      room += 3 * keys[upTo].length + datas[upTo].byteLength;
      upTo++;
    }
    const packed = scratch(room);
    const offsets = new Uint32Array(2 * (upTo - from) + 1);
    let at = 0;
    for (let i = from, k = 0; i < upTo; i++, k++) {
      offsets[2 * k] = at;
      at += writeKey(packed, keys[i], at);
      offsets[2 * k + 1] = at;
      packed.set(datas[i], at);
      at += datas[i].byteLength;
      // Packed records are not read again: let their strings and buffers
      // go while the chunk waits for its results (a record kept that long
      // outlives young-generation collections and costs a copy or two).
      keys[i] = undefined;
      datas[i] = undefined;
    }
    offsets[offsets.length - 1] = at;
    return {
      next: upTo, packed, offsets,
      streams: streams === null ? undefined : streams.slice(from, upTo),
      ehks: ehks === null ? undefined : ehks.slice(from, upTo),
    };
  }
}

module.exports = { toBytes, recordBytes, unpack, Columns };
