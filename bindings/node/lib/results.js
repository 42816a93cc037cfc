'use strict';
// PutResult, built lazily from the native result batches.

const { inspect } = require('node:util');

const kBatch = Symbol('batch'); // the results batch, then the attempts once built
const kIndex = Symbol('index'); // the record's position in the batch

/**
 * A delivered record's result. `attempts` is built from the arrays of the
 * results batch the first time it is read: most callers never read it,
 * and a million results then cost a million small objects, not three
 * million.
 */
class PutResult {
  constructor(group, subSequenceNumber, batch, index) {
    this.shardId = group.shardId;
    this.sequenceNumber = group.sequenceNumber;
    this.subSequenceNumber = subSequenceNumber;
    this.aggregated = group.aggregated;
    this[kBatch] = batch;
    this[kIndex] = index;
  }

  /** Every attempt, oldest first: {delayMs, durationMs, errorCode?, errorMessage?}. */
  get attempts() {
    const batch = this[kBatch];
    if (Array.isArray(batch)) return batch;
    const { delaysMs, durationsMs, attemptStarts, attemptErrors } = batch;
    const first = attemptStarts[this[kIndex]];
    const attempts = new Array(attemptStarts[this[kIndex] + 1] - first);
    // The first of the batch's (few) attempt errors at or after `first`.
    let lo = 0;
    let hi = attemptErrors.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (attemptErrors[mid].at < first) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0, at = first, e = lo; k < attempts.length; k++, at++) {
      let errorCode;
      let errorMessage;
      if (e < attemptErrors.length && attemptErrors[e].at === at) {
        ({ errorCode, errorMessage } = attemptErrors[e++]);
      }
      attempts[k] = { delayMs: delaysMs[at], durationMs: durationsMs[at], errorCode, errorMessage };
    }
    // The batch's arrays are no longer needed by this result.
    this[kBatch] = Object.freeze(attempts);
    return this[kBatch];
  }

  toJSON() {
    const { shardId, sequenceNumber, subSequenceNumber, aggregated, attempts } = this;
    return { shardId, sequenceNumber, subSequenceNumber, aggregated, attempts };
  }

  [inspect.custom](depth, options, inspectValue) {
    return inspectValue(this.toJSON(), options);
  }
}

/** The PutResult of the `i`th result of a native results batch. */
function resultAt(batch, i) {
  return new PutResult(batch.groups[batch.groupOf[i]], batch.subSequenceNumbers[i], batch, i);
}

module.exports = { PutResult, resultAt };
