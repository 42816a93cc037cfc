// ESM entry point: the same module as index.js (CommonJS), re-exported.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kpl = require('./index.js');

export const {
  Producer,
  checkConfig,
  deaggregate,
  KplError,
  ValidationError,
  ConfigError,
  UnknownSettingError,
  BufferFullError,
  ThrottledError,
  ExpiredError,
  ServiceError,
  TransportError,
  ShutDownError,
  CorruptRecordError,
  OutsideShardRangeError,
  UnexpectedError,
  SpoolFullError,
  DroppedError,
  SpoolError,
  PutManyError,
} = kpl;
export default kpl;
