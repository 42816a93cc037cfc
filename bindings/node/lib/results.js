'use strict';
// PutResult, built lazily from the native result batches.

const { inspect } = require('node:util');

const kBatch = Symbol('batch');
const kFirst = Symbol('firstAttempt');
const kCount = Symbol('attemptCount');
const kFirstError = Symbol('firstError');
const kAttempts = Symbol('attempts');

/**
 * A delivered record's result. `attempts` is built from the arrays of the
 * results batch the first time it is read: most callers never read it,
 * and a million results then cost a million objects, not three million.
 */
class PutResult {
  constructor(group, subSequenceNumber, batch, first, count, firstError) {
    this.shardId = group.shardId;
    this.sequenceNumber = group.sequenceNumber;
    this.subSequenceNumber = subSequenceNumber;
    this.aggregated = group.aggregated;
    this[kBatch] = batch;
    this[kFirst] = first;
    this[kCount] = count;
    this[kFirstError] = firstError;
    this[kAttempts] = null;
  }

  /** Every attempt, oldest first: {delayMs, durationMs, errorCode?, errorMessage?}. */
  get attempts() {
    if (this[kAttempts] === null) {
      const { delaysMs, durationsMs, attemptErrors } = this[kBatch];
      const attempts = new Array(this[kCount]);
      let e = this[kFirstError];
      for (let k = 0, at = this[kFirst]; k < attempts.length; k++, at++) {
        let errorCode;
        let errorMessage;
        if (e < attemptErrors.length && attemptErrors[e].at === at) {
          ({ errorCode, errorMessage } = attemptErrors[e++]);
        }
        attempts[k] = { delayMs: delaysMs[at], durationMs: durationsMs[at], errorCode, errorMessage };
      }
      this[kAttempts] = Object.freeze(attempts);
      this[kBatch] = null; // the batch's arrays are no longer needed
    }
    return this[kAttempts];
  }

  toJSON() {
    const { shardId, sequenceNumber, subSequenceNumber, aggregated, attempts } = this;
    return { shardId, sequenceNumber, subSequenceNumber, aggregated, attempts };
  }

  [inspect.custom](depth, options, inspectValue) {
    return inspectValue(this.toJSON(), options);
  }
}

module.exports = { PutResult };
