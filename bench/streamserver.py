"""The stream server every benchmark talks to, in its own process.

On a 2-core machine a server in the client's process competes for the GIL
with the very code being measured; in a subprocess it takes the other core.

Stream settings ride in the URL path, so that a provider's ``base_url`` can
carry them: ``/{n}/{delay_us}/{piece}/{size}/<provider path>``. ``n`` chunks
of ``size`` chars (``payload``); with ``delay_us`` 0 the body goes out as
fast as possible in ``piece``-byte writes, otherwise one chunk per write on a
fixed schedule (chunk i at start + i * delay, so timer slack does not add
up). A path ending in ``/chat`` (Cromicle) gets the raw text body, every
other path the SSE body. ``GET /stats`` returns, for the latest stream, when
its first and last bytes were written (``time.monotonic``, which is one
clock for every process on Linux).

Run: ``python -m bench.streamserver`` prints ``PORT`` on its first line and
serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

from . import payload

STATS = web.AppKey("stats", list)


def pieces_for(kind: str, n: int, size: int, piece: int, paced: bool) -> list:
    if kind == "raw":
        if paced:
            return payload.raw_pieces(n, size)
        body = payload.raw_body(n, size)
    else:
        if paced:
            return list(payload.sse_events(n, size))
        body = payload.sse_body(n, size)
    return [body[i:i + piece] for i in range(0, len(body), piece)]


async def stream(request: web.Request) -> web.StreamResponse:
    await request.read()
    info = request.match_info
    n, delay = int(info["n"]), int(info["delay"]) / 1e6
    kind = "raw" if info["tail"].rstrip("/").endswith("chat") else "sse"
    pieces = pieces_for(kind, n, int(info["size"]), int(info["piece"]), delay > 0)
    content_type = "text/plain; charset=utf-8" if kind == "raw" else "text/event-stream"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    record = {"path": request.path, "kind": kind, "bytes": 0}
    request.app[STATS].append(record)
    try:
        await send(response, pieces, delay, record)
    except ConnectionError:  # the client left (e.g. an interrupted cell): expected
        record["disconnected"] = True
    return response


async def send(response: web.StreamResponse, pieces: list, delay: float, record: dict) -> None:
    start = time.monotonic()
    for i, piece in enumerate(pieces):
        if delay > 0:
            wait = start + i * delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        await response.write(piece)
        record.setdefault("first_write", time.monotonic())
        record["bytes"] += len(piece)
    record["last_write"] = time.monotonic()
    await response.write_eof()


async def stats(request: web.Request) -> web.Response:
    recent = request.app[STATS][-int(request.query.get("last", "1")):]
    return web.json_response(recent)


def make_app() -> web.Application:
    app = web.Application()
    app[STATS] = []
    app.router.add_get("/stats", stats)
    app.router.add_route("*", r"/{n:\d+}/{delay:\d+}/{piece:\d+}/{size:\d+}/{tail:.*}", stream)
    return app


async def serve_until_stdin_closes() -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve_until_stdin_closes())
