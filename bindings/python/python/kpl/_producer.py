"""kpl.Producer (synchronous) and kpl.AsyncProducer (asyncio)."""

from __future__ import annotations

import asyncio
import atexit
import datetime
import json
import os
import threading
from types import TracebackType
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

from . import _kpl
from ._errors import ShutDownError
from ._kpl import NativeProducer, PutResult, RecordFuture

#: Data a record can carry: bytes-like, or text (sent as UTF-8).
Data = Union[bytes, bytearray, memoryview, str]
#: One item of ``put_many``: ``(partition_key, data)`` or a dict with
#: ``partition_key``, ``data`` and optional ``stream``, ``explicit_hash_key``.
RecordItem = Union[Tuple[str, Data], Mapping[str, Any]]
PathLike = Union[str, "os.PathLike[str]"]

#: Seconds the exit hook gives open producers to deliver what they hold.
EXIT_TIMEOUT = 30.0

# Producers not closed yet, kept alive until close() or interpreter exit
# (their records are flushed at exit).
_open: Dict[int, NativeProducer] = {}
_open_lock = threading.Lock()


def _setting_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.timedelta):
        return str(int(value.total_seconds() * 1000))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float, os.PathLike)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    raise TypeError(f"setting {name}: expected str, int, float or bool, got {type(value).__name__}")


def _pairs(settings: Mapping[str, object]) -> List[Tuple[str, str]]:
    return [(name, _setting_text(name, v)) for name, v in settings.items() if v is not None]


def check_config(properties: Optional[PathLike] = None, **settings: Any) -> Dict[str, str]:
    """Checks settings as ``Producer(**settings)`` would, without creating one, and
    returns the configuration they make: every setting by its KPL name, as text.

    >>> check_config(record_ttl=5000)["RecordTtl"]
    '5000'

    Raises :class:`ConfigError` (:class:`UnknownSettingError` for a name that is no
    setting, with ``suggestions``)."""
    path = os.fspath(properties) if properties is not None else None
    return dict(_kpl.config_entries(_pairs(settings), path))


def _native(properties: Optional[PathLike], settings: Mapping[str, object]) -> NativeProducer:
    path = os.fspath(properties) if properties is not None else None
    native = NativeProducer(_pairs(settings), path)
    with _open_lock:
        _open[id(native)] = native
    return native


def _forget(native: NativeProducer) -> None:
    with _open_lock:
        _open.pop(id(native), None)


class _Base:
    def __init__(self, **settings: Any) -> None:
        """Settings are the KPL's, by name in snake_case (``record_max_buffered_time=50``),
        or any spelling of it (``RecordMaxBufferedTime``); values are converted to text
        (durations in milliseconds; a ``timedelta`` works too); None values are skipped."""
        self._setup(None, settings)

    def _setup(self, properties: Optional[PathLike], settings: Mapping[str, Any]) -> None:
        self._native = _native(properties, settings)
        self._pid = os.getpid()
        self._closed = False

    @property
    def stream(self) -> Optional[str]:
        """The default stream (``stream_name``), if set."""
        return self._native.stream

    @property
    def outstanding(self) -> int:
        """Records put and not resolved yet."""
        return self._native.outstanding

    @property
    def closed(self) -> bool:
        return self._closed

    def metrics(self) -> Dict[str, Any]:
        """A snapshot of the metrics, with the KPL's names (``UserRecordsPut``, ...)."""
        result: Dict[str, Any] = json.loads(self._native.metrics_json())
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise ShutDownError("the producer is closed", kind="ShutDown")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"outstanding={self.outstanding}"
        return f"<{type(self).__name__} stream={self.stream!r} {state}>"


class Producer(_Base):
    """A Kinesis producer for synchronous code (threads welcome).

    ``put`` returns a :class:`RecordFuture` of a :class:`PutResult`;
    ``put_many`` is the fast path. Use it as a context manager, or call
    :meth:`close`; producers still open at interpreter exit are closed
    then (their records delivered, for at most ``kpl.EXIT_TIMEOUT`` s).
    """

    @classmethod
    def from_properties(cls, path: PathLike, **overrides: Any) -> "Producer":
        """A producer configured by a KPL properties file, then ``overrides``."""
        producer = cls.__new__(cls)
        producer._setup(path, overrides)
        return producer

    def put(
        self,
        partition_key: str,
        data: Data,
        *,
        stream: Optional[str] = None,
        explicit_hash_key: Union[str, int, None] = None,
        timeout: Optional[float] = None,
    ) -> RecordFuture:
        """Puts one record; waits (without the GIL) while the buffer is full,
        at most ``timeout`` seconds (else ``UserRecordTimeoutInMillis``, else
        forever), then raises BufferFullError. Raises ValidationError for a
        bad record and ShutDownError after close. Returns its
        :class:`RecordFuture` (the ``concurrent.futures.Future`` interface,
        without cancellation), which resolves with a PutResult, or fails
        with the record's KplError."""
        if self._closed:
            self._check_open()
        return self._native.put(partition_key, data, stream, explicit_hash_key, timeout)

    def put_many(
        self, records: Iterable[RecordItem], *, timeout: Optional[float] = None
    ) -> List[RecordFuture]:
        """Puts many records: the fast path. Returns one :class:`RecordFuture`
        per record, in order (the ``concurrent.futures.Future`` interface,
        without cancellation). A record that fails validation, or finds no
        room within ``timeout`` seconds, fails its own future; the others go in."""
        self._check_open()
        return self._native.put_many(records, timeout)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends everything buffered now and waits for the results; False if
        ``timeout`` seconds passed first."""
        if self._closed:
            return True
        return self._native.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Flushes (at most ``timeout`` seconds) and stops; records not
        resolved by then fail with ShutDownError. True if none had to."""
        if self._closed:
            return True
        self._closed = True
        try:
            return self._native.close(timeout) if self._pid == os.getpid() else False
        finally:
            _forget(self._native)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncProducer(_Base):
    """A Kinesis producer for asyncio.

    ``fut = await producer.put(key, data)`` returns once the record is in
    the buffer (waiting for room without blocking the loop); ``await fut``
    gives its :class:`PutResult`. Fire many puts and await the futures later.
    """

    @classmethod
    def from_properties(cls, path: PathLike, **overrides: Any) -> "AsyncProducer":
        """A producer configured by a KPL properties file, then ``overrides``."""
        producer = cls.__new__(cls)
        producer._setup(path, overrides)
        return producer

    async def put(
        self,
        partition_key: str,
        data: Data,
        *,
        stream: Optional[str] = None,
        explicit_hash_key: Union[str, int, None] = None,
    ) -> "asyncio.Future[PutResult]":
        """Puts one record once there is room; returns an asyncio future of
        its PutResult. Raises ValidationError for a bad record, ShutDownError
        after close."""
        if self._closed:
            self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PutResult] = loop.create_future()
        admitted = self._native.put_async(
            partition_key, data, stream, explicit_hash_key, loop, future
        )
        if admitted is not None:
            await admitted
        return future

    async def put_many(self, records: Iterable[RecordItem]) -> "List[asyncio.Future[PutResult]]":
        """Puts many records (the fast path), waiting for room as needed;
        one asyncio future per record, in order. A record that fails
        validation fails its own future."""
        self._check_open()
        loop = asyncio.get_running_loop()
        futures, admitted = self._native.put_many_async(records, loop)
        if admitted is not None:
            await admitted
        return futures

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends everything buffered and waits for the results (on a worker
        thread); False if ``timeout`` seconds passed first."""
        if self._closed:
            return True
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._native.flush, timeout)

    async def close(self, timeout: float = 30.0) -> bool:
        """Flushes (at most ``timeout`` seconds) and stops. True if every
        record was resolved in time."""
        if self._closed:
            return True
        self._closed = True
        try:
            if self._pid != os.getpid():
                return False
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self._native.close, timeout)
        finally:
            _forget(self._native)

    async def __aenter__(self) -> "AsyncProducer":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()


def _at_exit() -> None:
    """Delivers what open producers hold, then stops the runtime, before
    the interpreter finalizes (no thread of ours may touch it after)."""
    with _open_lock:
        natives = list(_open.values())
        _open.clear()
    for native in natives:
        try:
            native.close(EXIT_TIMEOUT)
        except Exception:  # pragma: no cover - best effort at exit
            pass
    _kpl._shutdown_runtime()


def _after_fork_in_child() -> None:
    # The parent's producers (and runtime) do not work here: drop them.
    global _open_lock
    _open_lock = threading.Lock()
    _open.clear()
    _kpl._after_fork_child()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
