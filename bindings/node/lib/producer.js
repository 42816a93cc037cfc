'use strict';
// The Producer: puts, results, flush and close over the native addon.

const native = require('../native.cjs');
const { PutManyError, isErrInfo, toError } = require('./errors');
const { Columns, recordBytes, unpack } = require('./records');
const { resultAt } = require('./results');
const { toSettings } = require('./settings');

const kNative = Symbol('native');
const CREATE = Symbol('create');

// The resolve function of the promise put() just made. put() keeps only
// that one until the outcome (a failure settles it with a rejected
// promise): a reject function per record would live as long, for the few
// records that fail.
let captured = null;
function capture(resolve) {
  captured = resolve;
}

/** Where the `index`th record of a putMany chunk is in the putMany. */
function chunkPosition(entry, index) {
  return entry.map === null ? entry.base + index : entry.map[index];
}

/** Settles a put() promise, through its resolve function, as failed. */
function fail(resolve, err) {
  resolve(Promise.reject(err));
}

class Producer {
  /**
   * `new Producer(options)` returns at once; the SDK client is made in the
   * background and every call waits for it (a bad configuration throws
   * here; an error creating the client rejects every call, and `ready()`).
   * `await Producer.create(options)` does the same and waits.
   */
  constructor(options, propertiesPath, token) {
    this._pending = new Map(); // id -> {resolve, reject}
    this._nextId = 0;
    this._keepAlive = null;
    this._closed = false;
    this._native = null;
    // put() calls made in one turn of the event loop go to the native side
    // together, in putMany chunks: the records, and their resolve functions.
    this._queue = new Columns();
    this._resolvers = [];
    this._draining = null;
    const settings = toSettings(options);
    const path = token === CREATE ? propertiesPath : undefined;
    const checked = native.checkConfig(settings, path);
    if (isErrInfo(checked)) throw toError(checked);
    this._ready = native.createProducer(settings, path, (batch) => this._onResults(batch))
      .then((p) => {
        if (isErrInfo(p)) throw toError(p);
        this._native = p;
        return this;
      });
    // Errors surface through the calls that wait on _ready; do not let an
    // unobserved one become an unhandled rejection.
    this._ready.catch(() => {});
  }

  /** Creates a producer and waits until it is ready. */
  static async create(options) {
    const p = new Producer(options);
    return p.ready();
  }

  /**
   * Creates a producer from a KPL properties file (`Name = value` lines);
   * `overrides` (camelCase or KPL names) win over the file.
   */
  static async fromProperties(path, overrides) {
    if (typeof path !== 'string') throw new TypeError('path must be a string');
    const p = new Producer(overrides, path, CREATE);
    return p.ready();
  }

  /** Resolves with the producer once its Kinesis client is made. */
  ready() {
    return this._ready;
  }

  /** Records put and not yet resolved. */
  get outstanding() {
    const queued = this._queue.length;
    return (this._native ? this._native.outstanding() : this._pending.size) + queued;
  }

  /** The KPL's metrics (UserRecordsPut, KinesisRecordsPut, ErrorsByCode, ...). */
  metrics() {
    return this._native ? this._native.metrics() : {};
  }

  /** The effective settings, by KPL names (credentials left out). */
  config() {
    return this._native ? this._native.config() : {};
  }

  // -- results --

  _track(id, entry) {
    this._pending.set(id, entry);
    if (this._keepAlive === null) {
      // While records are outstanding, keep the process alive until each
      // has its result (bounded by RecordTtl). Nothing else of ours holds
      // the event loop: the results channel is unref'd.
      this._keepAlive = setInterval(() => {}, 1 << 30);
    }
  }

  _untrack(id) {
    const entry = this._pending.get(id);
    if (entry === undefined) return undefined;
    this._pending.delete(id);
    if (this._pending.size === 0 && this._keepAlive !== null) {
      clearInterval(this._keepAlive);
      this._keepAlive = null;
    }
    return entry;
  }

  _onResults(batch) {
    const { ids, indexes, failures } = batch;
    const pending = this._pending;
    let lastId = -1;
    let entry;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id !== lastId) {
        entry = pending.get(id);
        lastId = id;
      }
      if (entry === undefined) continue;
      if (entry.singles !== undefined) {
        const resolve = entry.singles[entry.base + indexes[i]];
        this._singleSettled(id, entry);
        resolve(resultAt(batch, i));
        if (entry.left === 0) entry = undefined;
      } else if (entry.chunk === undefined) {
        this._untrack(id);
        entry.resolve(resultAt(batch, i));
      } else {
        this._chunkDelivered(id, entry, indexes[i], batch, i);
        if (entry.left === 0) entry = undefined;
      }
    }
    for (const d of failures) {
      const e = pending.get(d.id);
      if (e === undefined) continue;
      if (e.singles !== undefined) {
        const resolve = e.singles[e.base + d.index];
        this._singleSettled(d.id, e);
        fail(resolve, toError(d.error));
      } else if (e.chunk === undefined) {
        this._untrack(d.id);
        e.reject(toError(d.error));
      } else {
        this._chunkFailed(d.id, e, d.index, toError(d.error));
      }
    }
  }

  /** One put() of a batched chunk has its outcome. */
  _singleSettled(id, entry) {
    if (--entry.left === 0) this._untrack(id);
  }

  /**
   * One record of a putMany chunk was delivered: its result is the `at`th
   * of the results batch `from`. Only where to find it is kept (its
   * PutResult is made when the putMany settles): a result object per
   * record that lives until the whole putMany is done costs the garbage
   * collector more than one made just before the caller gets it.
   */
  _chunkDelivered(id, entry, index, from, at) {
    const k = chunkPosition(entry, index);
    entry.batch.from[k] = from;
    entry.batch.at[k] = at;
    this._chunkSettled(id, entry);
  }

  /** One record of a putMany chunk failed with `error`. */
  _chunkFailed(id, entry, index, error) {
    entry.batch.results[chunkPosition(entry, index)] = error;
    entry.batch.failed++;
    this._chunkSettled(id, entry);
  }

  /** One more record of a putMany chunk has its outcome. */
  _chunkSettled(id, entry) {
    if (--entry.left === 0) this._untrack(id);
    if (--entry.batch.left === 0) entry.batch.settle();
  }

  _id() {
    this._nextId = (this._nextId + 1) >>> 0;
    return this._nextId;
  }

  /**
   * Puts without waiting for room; returns the record's admission as a
   * settled state. Returns [promise] if accepted or throws the error.
   */
  _tryPut(fields) {
    const id = this._id();
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    this._track(id, { resolve, reject });
    const err = this._native.tryPut(id, fields[0], fields[1], fields[2], fields[3]);
    if (err) {
      this._untrack(id);
      return { error: err, promise: null };
    }
    return { error: null, promise };
  }

  /** Waits for room. Resolves with the result promise (wrapped) once accepted. */
  async _putWait(fields) {
    const id = this._id();
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    this._track(id, { resolve, reject });
    const err = await this._native.putWait(id, fields[0], fields[1], fields[2], fields[3]);
    if (err) {
      this._untrack(id);
      throw toError(err);
    }
    return { promise };
  }

  /** Two-stage put: resolves `{ result }` once the record has buffer room. */
  async _admit(record) {
    const fields = unpack(record);
    if (this._native === null) await this._ready;
    const r = this._tryPut(fields);
    if (r.error === null) return { promise: r.promise };
    if (r.error.kind !== 'BufferFull') throw toError(r.error);
    return this._putWait(fields);
  }

  /**
   * Puts a record. The promise settles once the record had buffer room
   * (waiting while the buffer is full: backpressure) and then got its
   * result: a PutResult, or a KplError subclass holding the record.
   */
  put(record) {
    let bytes;
    try {
      bytes = recordBytes(record);
    } catch (e) {
      return Promise.reject(e);
    }
    // One executor for every put (no closure per record).
    const promise = new Promise(capture);
    const resolve = captured;
    try {
      this._queue.push(record, bytes);
    } catch (e) {
      fail(resolve, e);
      return promise;
    }
    this._resolvers.push(resolve);
    // The first put of this turn schedules the hand-over; the others of
    // the same turn join it (one native call per chunk, not per record).
    if (this._draining === null) this._draining = Promise.resolve().then(() => this._drain());
    return promise;
  }

  /** Hands a packed chunk, tracked under `id`, to the native side. */
  _putChunk(id, c) {
    try {
      return this._native.putMany(id, c.packed, c.offsets, c.streams, c.ehks);
    } catch (e) {
      this._untrack(id); // refused whole: no outcome will come for it
      throw e;
    }
  }

  /**
   * Hands queued put() records to the native side in putMany chunks, in
   * order; each chunk's call resolves once its records were admitted (so
   * a full buffer holds the queue back: backpressure).
   */
  async _drain() {
    let resolvers = [];
    let sent = 0; // records of `resolvers` handed to the native side
    try {
      if (this._native === null) await this._ready;
      while (this._queue.length > 0) {
        const cols = this._queue;
        resolvers = this._resolvers;
        sent = 0;
        this._queue = new Columns();
        this._resolvers = [];
        while (sent < cols.length) {
          const c = cols.chunk(sent);
          const id = this._id();
          // The chunk's resolve functions start at `base` (no copy).
          this._track(id, { singles: resolvers, base: sent, left: c.next - sent });
          const admitted = this._putChunk(id, c);
          sent = c.next;
          // Usually nothing to wait for; a promise when the native queue
          // or the buffer is full.
          if (admitted !== undefined) await admitted;
        }
      }
    } catch (err) {
      // The producer never started (or the native call refused the batch):
      // fail every put not yet handed over.
      for (let i = sent; i < resolvers.length; i++) fail(resolvers[i], err);
      const waiting = this._resolvers;
      this._queue = new Columns();
      this._resolvers = [];
      for (const resolve of waiting) fail(resolve, err);
    } finally {
      this._draining = null;
    }
  }

  /**
   * Two-stage put: resolves `{ result }` as soon as the record is in the
   * buffer (waiting while it is full); `result` is the promise of its
   * PutResult. `await send()` in a loop gives flow control without
   * waiting for each record's delivery.
   */
  async send(record) {
    const { promise } = await this._admit(record);
    promise.catch(() => {}); // the caller observes it through `result`
    return { result: promise };
  }

  /**
   * Puts without waiting: returns the promise of the PutResult, or throws
   * BufferFullError (holding the record) when the buffer is full, or
   * ValidationError / ShutDownError. Before the producer is ready it
   * throws BufferFullError too.
   */
  tryPut(record) {
    const fields = unpack(record);
    if (this._native === null) {
      throw toError({
        kind: this._closed ? 'ShutDown' : 'BufferFull',
        message: 'the producer is not ready yet (await producer.ready())',
        retryable: !this._closed, record, attempts: [],
      });
    }
    const r = this._tryPut(fields);
    if (r.error !== null) throw toError(r.error);
    return r.promise;
  }

  /**
   * Puts many records, in order, waiting for room as needed. Resolves with
   * one PutResult per record, in order, once all are delivered; if any
   * failed it rejects with a PutManyError whose `results` holds, per
   * record, its PutResult or its KplError (and `errors` the failures).
   */
  async putMany(records) {
    if (!Array.isArray(records)) throw new TypeError('putMany takes an array of records');
    const n = records.length;
    if (n === 0) return [];
    let resolve;
    const done = new Promise((res) => { resolve = res; });
    // Per record: its results batch and position there once delivered
    // (`from`, `at`), or in `results` the error that refused it.
    const batch = {
      results: new Array(n), from: new Array(n), at: new Uint32Array(n),
      left: n, failed: 0, settle: () => resolve(),
    };
    // The records go to the native side in chunks: one native call, one
    // concatenated buffer and one pending entry per chunk, each record's
    // outcome comes back by its index in the chunk.
    // Checked and taken here, before any await; a refused record keeps its
    // place in `results`, `positions` maps the others back when any was.
    const cols = new Columns();
    let positions = null;
    for (let i = 0; i < n; i++) {
      let bytes;
      try {
        bytes = recordBytes(records[i]);
      } catch (e) {
        batch.results[i] = e;
        batch.failed++;
        batch.left--;
        if (positions === null) positions = Array.from({ length: cols.length }, (_, k) => k);
        continue;
      }
      if (positions !== null) positions.push(i);
      cols.push(records[i], bytes);
    }
    records = null; // taken: the records need not outlive the awaits below
    if (cols.length > 0 && this._native === null) await this._ready;
    for (let at = 0; at < cols.length;) {
      const c = cols.chunk(at);
      const id = this._id();
      const map = positions === null ? null : positions.slice(at, c.next);
      this._track(id, { chunk: true, batch, base: at, map, left: c.next - at });
      at = c.next;
      // Nothing to wait for, or (the native queue or the buffer is full) a
      // promise that resolves once every record of the chunk was admitted
      // (or refused): the next chunk waits for it, for backpressure. The
      // native side admits chunks in the order they came.
      const admitted = this._putChunk(id, c);
      if (admitted !== undefined) await admitted;
    }
    if (batch.left > 0) await done;
    const { results, from, at } = batch;
    for (let i = 0; i < n; i++) {
      if (from[i] !== undefined) results[i] = resultAt(from[i], at[i]);
    }
    if (batch.failed > 0) {
      const errors = [];
      for (const r of results) if (r instanceof Error) errors.push(r);
      throw new PutManyError(results, errors);
    }
    return results;
  }

  /**
   * Sends everything buffered now and resolves once every record put
   * before the call has its result.
   */
  async flush() {
    await this._ready;
    // put() calls made before this one are on their way to the native side.
    while (this._draining !== null) await this._draining;
    const err = await this._native.flush();
    if (err) throw toError(err);
  }

  /**
   * Stops accepting records, flushes (at most `timeoutMs`, default 30 s),
   * and stops the pipeline; records still unresolved then fail with
   * ShutDownError. Later puts fail with ShutDownError. Closing twice is a
   * no-op. Afterwards nothing of ours keeps the process alive.
   */
  async close(timeoutMs = 30_000) {
    this._closed = true;
    try {
      await this._ready;
    } catch {
      return; // never started: nothing to close
    }
    while (this._draining !== null) await this._draining;
    const err = await this._native.close(Number(timeoutMs));
    if (err) throw toError(err);
  }

  /** `await using producer = await Producer.create(...)` closes it. */
  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.close();
  }
}

module.exports = { Producer };
