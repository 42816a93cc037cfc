"""Fork safety and interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import kpl
import pytest
from conftest import Sim
from test_producer import with_ours


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_can_produce(sim: Sim) -> None:
    stream = sim.new_stream(1)
    parent = kpl.Producer(**sim.config(stream))
    assert parent.put("parent", b"before fork").result(timeout=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            try:
                parent.put("stale", b"x")
            except kpl.ShutDownError:
                pass
            else:
                raise AssertionError("the parent's producer must not work in the child")
            with kpl.Producer(**sim.config(stream)) as child:
                child.put("child", b"after fork").result(timeout=10)
            code = 0
        except BaseException as e:  # noqa: BLE001
            print("child failed:", repr(e), file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # The parent's producer still works.
    assert parent.put("parent", b"after fork").result(timeout=10)
    parent.close()
    got = with_ours(sim.read_all(stream))
    assert got[("child", b"after fork")] == 1
    assert got[("parent", b"after fork")] == 1


def test_fifty_interpreter_runs_exit_cleanly_and_flush(sim: Sim) -> None:
    stream = sim.new_stream(1)
    settings = sim.config(stream, record_max_buffered_time=2000)
    script = textwrap.dedent(
        f"""
        import sys, kpl
        p = kpl.Producer(**{settings!r})
        p.put("exit-run", sys.argv[1].encode())
        """
    )
    for i in range(50):
        proc = subprocess.run(
            [sys.executable, "-c", script, str(i)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, (i, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and "panick" not in proc.stderr, proc.stderr
    # Buffered for 2 s, the records were flushed by the exit hook.
    got = with_ours(sim.read_all(stream))
    assert sorted(int(d) for (k, d) in got.elements()) == list(range(50))


def test_exit_with_open_async_producer_and_pending_futures(sim: Sim) -> None:
    # The loop is closed before the exit hook delivers the results: they
    # are dropped quietly, the records still go out, the process exits 0.
    stream = sim.new_stream(1)
    settings = sim.config(stream, record_max_buffered_time=2000)
    script = textwrap.dedent(
        f"""
        import asyncio, kpl
        async def main():
            p = kpl.AsyncProducer(**{settings!r})
            await p.put_many([("async-exit", b"%d" % i) for i in range(100)])
        asyncio.run(main())
        """
    )
    for _ in range(5):
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "panick" not in proc.stderr, proc.stderr
    got = with_ours(sim.read_all(stream))
    assert sum(got.values()) == 500
