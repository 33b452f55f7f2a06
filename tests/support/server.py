"""Real aiohttp servers on 127.0.0.1 for tests: run in a thread (so kernels,
sync code and async tests can all reach them) and record every request.

``handler_cancellation=True`` lets a handler see its client leave: the record
of that request gets ``disconnected = True``, which tests wait for (bounded)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    finished: bool = False
    disconnected: bool = False

    def json(self):
        return json.loads(self.body)


@dataclass
class ThreadedServer:
    """Start with ``ThreadedServer.start(app)``; ``url`` is ``http://127.0.0.1:PORT``."""

    app: web.Application
    url: str = ""
    requests: List[Recorded] = field(default_factory=list)
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _runner: Optional[web.AppRunner] = None
    _thread: Optional[threading.Thread] = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls, app: web.Application) -> "ThreadedServer":
        server = cls(app)
        app[SERVER] = server
        ready = threading.Event()
        server._thread = threading.Thread(target=server._serve, args=(ready,), daemon=True)
        server._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start within 10 s")
        return server

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.app, handler_cancellation=True)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def call_soon(self, callback, *args) -> None:
        """Run ``callback`` on the server's loop (e.g. ``event.set`` of a held stream)."""
        self._loop.call_soon_threadsafe(callback, *args)

    def note(self, recorded: Recorded, **changes) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(recorded, key, value)
            self._changed.notify_all()

    def add(self, recorded: Recorded) -> None:
        with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (re-checked on each change), bounded."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)


SERVER = web.AppKey("server", ThreadedServer)


def recording(handler):
    """Wrap an aiohttp handler so each request is recorded, with its fate."""

    async def wrapped(request: web.Request):
        server: ThreadedServer = request.app[SERVER]
        body = await request.read()
        rec = Recorded(request.method, request.path, dict(request.query),
                       dict(request.headers), body)
        server.add(rec)
        try:
            response = await handler(request, rec)
        except asyncio.CancelledError:
            server.note(rec, disconnected=True)
            raise
        server.note(rec, finished=True)
        return response

    return wrapped


def serve(routes) -> ThreadedServer:
    """``routes``: list of (method, path, handler(request, rec)). Returns a started server."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, recording(handler))
    return ThreadedServer.start(app)


async def stream_pieces(request: web.Request, pieces, *, content_type="text/plain",
                        status=200, headers=None, hold=None) -> web.StreamResponse:
    """Answer with ``pieces`` (bytes), each written and drained on its own.

    ``hold``: an asyncio.Event awaited after the pieces (to keep the stream open).
    """
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type,
                                                          **(headers or {})})
    await response.prepare(request)
    for piece in pieces:
        await response.write(piece)
        await asyncio.sleep(0)  # let each write go out as its own chunk
    if hold is not None:
        await hold.wait()
    await response.write_eof()
    return response
