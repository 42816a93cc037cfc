"""An asyncio HTTP endpoint that produces one record per request (no
framework: asyncio streams). Every POST body becomes a record keyed by the
`X-Partition-Key` header; the response carries its shard and sequence number.

    kpl sim --stream events:2 &
    KPL_STREAM=events KPL_ENDPOINT=http://127.0.0.1:4567 AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local python examples/python/web_handler.py
    curl -d '{"clicked": "buy"}' -H 'X-Partition-Key: user-7' http://127.0.0.1:8080/events
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Dict, Optional, Tuple

import kpl


async def read_request(reader: asyncio.StreamReader) -> Tuple[str, Dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, headers, body


def response(status: str, payload: object) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class Handler:
    def __init__(self, producer: kpl.AsyncProducer) -> None:
        self.producer = producer

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, headers, body = await read_request(reader)
            if method != "POST":
                writer.write(response("405 Method Not Allowed", {"error": "POST a record"}))
                return
            key = headers.get("x-partition-key") or "anonymous"
            try:
                # Waits for buffer room without blocking the loop...
                future = await self.producer.put(key, body)
                # ...and the result comes once Kinesis acknowledged the record.
                result = await asyncio.wait_for(future, timeout=30)
            except kpl.ValidationError as e:
                writer.write(response("400 Bad Request", {"error": str(e)}))
            except (kpl.KplError, asyncio.TimeoutError) as e:
                writer.write(response("503 Service Unavailable", {"error": str(e)}))
            else:
                writer.write(
                    response(
                        "200 OK",
                        {
                            "shard_id": result.shard_id,
                            "sequence_number": result.sequence_number,
                            "sub_sequence_number": result.sub_sequence_number,
                        },
                    )
                )
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            await writer.drain()
            writer.close()


async def serve(port: int = 8080, ready: Optional["asyncio.Future[int]"] = None) -> None:
    settings = {
        "stream_name": os.environ.get("KPL_STREAM", "events"),
        "region": os.environ.get("AWS_REGION", "us-east-1"),
        "kinesis_endpoint": os.environ.get("KPL_ENDPOINT"),
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "record_max_buffered_time": 20,  # ms: a request waits at most this long to be batched
    }
    async with kpl.AsyncProducer(**settings) as producer:
        server = await asyncio.start_server(Handler(producer), "127.0.0.1", port)
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{bound}", flush=True)
        if ready is not None:
            ready.set_result(bound)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(os.environ.get("PORT", "8080"))))
    except KeyboardInterrupt:
        pass
