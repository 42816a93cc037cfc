"""The exception hierarchy, and the one mapping from kpl-core's error kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Type

if TYPE_CHECKING:
    from ._kpl import Attempt


class KplError(Exception):
    """Any error of the producer. Errors about a record carry it back.

    Attributes:
        kind: kpl-core's error kind, e.g. ``"BufferFull"``.
        message: what went wrong, for a person.
        code: the Kinesis error code, when the service gave one.
        partition_key, data, stream, explicit_hash_key: the record, when
            the error is about one (``None`` otherwise).
        attempts: the attempts made to deliver the record, oldest first.
    """

    kind: str = "Unexpected"

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        code: Optional[str] = None,
        partition_key: Optional[str] = None,
        data: Optional[bytes] = None,
        stream: Optional[str] = None,
        explicit_hash_key: Optional[str] = None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.message = message
        self.code = code
        self.partition_key = partition_key
        self.data = data
        self.stream = stream
        self.explicit_hash_key = explicit_hash_key
        self.attempts: List[Attempt] = list(attempts)

    def __str__(self) -> str:
        if self.code:
            return f"{self.kind} ({self.code}): {self.message}"
        return f"{self.kind}: {self.message}"


class ConfigError(KplError, ValueError):
    """A setting is unknown, malformed or out of range."""

    kind = "InvalidConfig"


class UnknownSettingError(ConfigError):
    """A setting name is not one of the KPL's.

    Attributes:
        setting: the name given.
        suggestions: the closest known names, best first (may be empty).
    """

    kind = "UnknownSetting"
    setting: Optional[str] = None
    suggestions: List[str] = []


class ValidationError(KplError, ValueError):
    """The record breaks a Kinesis limit (key length, size, explicit hash key)."""

    kind = "InvalidRecord"


class BufferFullError(KplError):
    """The buffer stayed full (MaxBufferedRecords / MaxBufferedBytes) for the whole timeout."""

    kind = "BufferFull"


class ThrottledError(KplError):
    """Kinesis throttled the record and FailIfThrottled is set."""

    kind = "Throttled"


class ExpiredError(KplError):
    """The record was not delivered within RecordTtl; ``attempts`` tell why."""

    kind = "Expired"


class ServiceError(KplError):
    """Kinesis rejected the record or request for good; ``code`` names why."""

    kind = "Service"


class TransportError(KplError):
    """The request could not be completed (connection, TLS, timeout)."""

    kind = "Transport"


class ShutDownError(KplError):
    """The producer was closed before the record could be delivered, or before the put."""

    kind = "ShutDown"


class CorruptRecordError(KplError, ValueError):
    """An aggregated record's bytes are inconsistent, or hold a record outside the shard's range."""

    kind = "Corrupt"


class UnexpectedError(KplError):
    """The service answered in a way the producer cannot use."""

    kind = "Unexpected"


class SpoolFullError(KplError):
    """The spool holds SpoolMaxBytes and SpoolFullPolicy refused the record; put it again later."""

    kind = "SpoolFull"


class DroppedError(KplError):
    """The record was removed from a full spool (SpoolFullPolicy = drop_oldest) and not delivered."""

    kind = "Dropped"


class SpoolError(KplError):
    """The spool cannot be used: its directory is in use by another producer, unreadable, or an fsync failed."""

    kind = "Spool"


# The one mapping from kpl-core's ErrorKind (ErrorKind::as_str) to classes.
_BY_KIND: Dict[str, Type[KplError]] = {
    "InvalidConfig": ConfigError,
    "UnknownSetting": UnknownSettingError,
    "InvalidRecord": ValidationError,
    "BufferFull": BufferFullError,
    "Throttled": ThrottledError,
    "Expired": ExpiredError,
    "Service": ServiceError,
    "Transport": TransportError,
    "ShutDown": ShutDownError,
    "Corrupt": CorruptRecordError,
    "OutsideShardRange": CorruptRecordError,
    "Unexpected": UnexpectedError,
    "SpoolFull": SpoolFullError,
    "Dropped": DroppedError,
    "Spool": SpoolError,
}


def _from_native(
    kind: str,
    message: str,
    code: Optional[str],
    partition_key: Optional[str],
    data: Optional[bytes],
    stream: Optional[str],
    explicit_hash_key: Optional[str],
    attempts: List[Attempt],
    setting: Optional[str] = None,
    suggestions: Sequence[str] = (),
) -> KplError:
    """Called by the native module for every kpl-core error."""
    cls = _BY_KIND.get(kind, KplError)
    error = cls(
        message,
        kind=kind,
        code=code,
        partition_key=partition_key,
        data=data,
        stream=stream,
        explicit_hash_key=explicit_hash_key,
        attempts=attempts,
    )
    if isinstance(error, UnknownSettingError):
        error.setting = setting
        error.suggestions = list(suggestions)
    return error

