"""A TLS chat server behind a TCP proxy that adds a network round trip, in
its own process (``bench.connections`` talks to it).

The server speaks OpenAI's streamed Chat Completions
(``POST /v1/chat/completions``: ``payload.sse_events``, then the end of the
body) over TLS with the certificate it is given. The proxy in front of it
counts the connections it accepts and delays traffic as a network would:
each read is delivered RTT/2 later in its direction (pipelined: reads do
not wait for each other), and a new connection first waits one RTT (the TCP
handshake) before its bytes start to flow.

Run: ``python -m bench.rttproxy CERT KEY CHUNKS`` prints ``{"proxy": PORT,
"server": PORT}`` on its first line, then reads commands from stdin, one a
line, and answers each with one JSON line: ``rtt MS`` (set the round trip,
``{"rtt_ms": MS}``), ``count`` (``{"connections": N}`` accepted since the
last count). It serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

from aiohttp import web

from . import payload

#: Bytes read at once on each side of the proxy.
READ_SIZE = 64 * 1024


class Proxy:
    """The delaying, counting TCP proxy to ``127.0.0.1:upstream``."""

    def __init__(self, upstream: int):
        self.upstream, self.rtt, self.accepted = upstream, 0.0, 0
        self.writers: set = set()  # of open connections, closed at shutdown

    async def handle(self, client_reader, client_writer) -> None:
        self.accepted += 1
        writers = {client_writer}
        self.writers |= writers
        try:
            await asyncio.sleep(self.rtt)  # the TCP handshake's round trip
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1",
                                                                         self.upstream)
            writers.add(server_writer)
            self.writers.add(server_writer)
            await asyncio.gather(self.pipe(client_reader, server_writer),
                                 self.pipe(server_reader, client_writer))
        except OSError:
            pass
        finally:
            for writer in writers:
                writer.close()
            self.writers -= writers

    async def close(self) -> None:
        """End every connection, so that its handler returns before the loop does."""
        for writer in list(self.writers):
            writer.close()
        for _ in range(200):
            if not self.writers:
                return
            await asyncio.sleep(0.01)

    async def pipe(self, reader, writer) -> None:
        """Copy ``reader`` to ``writer``, each read RTT/2 after it was read."""
        queue: asyncio.Queue = asyncio.Queue()
        deliver = asyncio.ensure_future(self.deliver(queue, writer))
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(READ_SIZE)
                queue.put_nowait((loop.time() + self.rtt / 2, data))
                if not data:
                    break
        except OSError:
            queue.put_nowait((loop.time(), b""))
        await deliver

    @staticmethod
    async def deliver(queue: asyncio.Queue, writer) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def make_app(chunks: int) -> web.Application:
    body = b"".join(payload.sse_events(chunks))

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


async def serve(cert: str, key: str, chunks: int) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(make_app(chunks), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server_port = runner.addresses[0][1]
    proxy = Proxy(server_port)
    listener = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy_port = listener.sockets[0].getsockname()[1]
    print(json.dumps({"proxy": proxy_port, "server": server_port}), flush=True)
    await commands(proxy)
    listener.close()
    await proxy.close()
    await runner.cleanup()


async def commands(proxy: Proxy) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        word, *rest = line.split()
        if word == "rtt":
            proxy.rtt = float(rest[0]) / 1000
            answer = {"rtt_ms": float(rest[0])}
        elif word == "count":
            answer, proxy.accepted = {"connections": proxy.accepted}, 0
        else:
            answer = {"error": f"unknown command {word!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))
