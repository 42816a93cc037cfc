'use strict';
// Errors: kpl-core's ErrorKind mapped to Error subclasses in ONE place,
// `toError`.

class KplError extends Error {
  constructor(message, info = {}) {
    super(message);
    this.name = new.target.name;
    /** kpl-core's ErrorKind, e.g. 'BufferFull', 'Service'. */
    this.code = info.kind ?? 'Unexpected';
    /** The service's error code (e.g. 'ResourceNotFoundException'), if any. */
    this.serviceCode = info.serviceCode;
    /** Whether putting the same record again later may succeed. */
    this.retryable = Boolean(info.retryable);
    /** The record handed back: {partitionKey, data, streamName, explicitHashKey}. */
    this.record = info.record;
    /** Every attempt made for the record, oldest first. */
    this.attempts = info.attempts ?? [];
  }
}
class ValidationError extends KplError {}
class ConfigError extends KplError {
  constructor(message, info = {}) {
    super(message, info);
    /** The setting the error is about, when one alone was wrong. */
    this.setting = info.setting ?? undefined;
  }
}
/** A setting name that is not one of the KPL's; `suggestions`: the closest known names. */
class UnknownSettingError extends ConfigError {
  constructor(message, info = {}) {
    super(message, info);
    this.suggestions = info.suggestions ?? [];
  }
}
class BufferFullError extends KplError {}
class ThrottledError extends KplError {}
class ExpiredError extends KplError {}
class ServiceError extends KplError {}
class TransportError extends KplError {}
class ShutDownError extends KplError {}
class CorruptRecordError extends KplError {}
class OutsideShardRangeError extends KplError {}
class UnexpectedError extends KplError {}
class SpoolFullError extends KplError {}
class DroppedError extends KplError {}
class SpoolError extends KplError {}

/** kpl-core ErrorKind -> class. The one place errors are mapped. */
const ERROR_CLASSES = {
  InvalidRecord: ValidationError,
  InvalidConfig: ConfigError,
  UnknownSetting: UnknownSettingError,
  BufferFull: BufferFullError,
  Throttled: ThrottledError,
  Expired: ExpiredError,
  Service: ServiceError,
  Transport: TransportError,
  ShutDown: ShutDownError,
  Corrupt: CorruptRecordError,
  OutsideShardRange: OutsideShardRangeError,
  Unexpected: UnexpectedError,
  SpoolFull: SpoolFullError,
  Dropped: DroppedError,
  Spool: SpoolError,
};

function toError(info) {
  const Class = ERROR_CLASSES[info.kind] ?? KplError;
  const prefix = info.serviceCode ? `${info.kind} (${info.serviceCode})` : info.kind;
  return new Class(`${prefix}: ${info.message}`, info);
}

/** Native calls answer with `null`, a value, or an ErrInfo (has `kind` and `message`). */
function isErrInfo(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.kind === 'string' &&
    typeof v.message === 'string' && typeof v.retryable === 'boolean';
}

class PutManyError extends KplError {
  constructor(results, errors) {
    super(`${errors.length} of ${results.length} record(s) failed; first: ${errors[0].message}`, {
      kind: 'PutMany', retryable: errors.every((e) => e.retryable), attempts: [],
    });
    this.results = results;
    this.errors = errors;
  }
}

module.exports = { KplError, ValidationError, ConfigError, UnknownSettingError, BufferFullError, ThrottledError, ExpiredError, ServiceError, TransportError, ShutDownError, CorruptRecordError, OutsideShardRangeError, UnexpectedError, SpoolFullError, DroppedError, SpoolError, toError, isErrInfo, PutManyError };
