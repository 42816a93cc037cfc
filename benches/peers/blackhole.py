#!/usr/bin/env python3
"""A Kinesis endpoint that never answers: accepts TCP connections on
127.0.0.1 and holds them open without reading a reply into them, so a
producer pointed at it buffers every record (memory per buffered record).
Prints "blackhole listening on PORT", exits after --seconds.

    blackhole.py [--seconds 600]
"""
import argparse, selectors, socket, time

a = argparse.ArgumentParser()
a.add_argument("--seconds", type=float, default=600)
o = a.parse_args()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1024)
srv.setblocking(False)
print(f"blackhole listening on {srv.getsockname()[1]}", flush=True)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
deadline = time.monotonic() + o.seconds
while time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.5):
        if key.fileobj is srv:
            conn, _ = srv.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        else:
            # Drain what the producer sends so its writes never block, and
            # never answer; forget connections the producer closed.
            try:
                data = key.fileobj.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
