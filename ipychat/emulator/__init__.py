"""ipychat's built-in emulator: one aiohttp server on one port that answers
every chat protocol ipychat speaks, deterministically, with fault injection,
and with reasoning, usage and finish reasons in each protocol's own form.

Importing this package is cheap; aiohttp is loaded when a server starts.

    with EmulatorServer(delay=0) as emulator:
        Cromicle.create_async_generator(None, messages, base_url=emulator.url)

Faults: ``[[emulator key=value flag ...]]`` inside the last user message, or
``POST /_emulator/faults`` (see ``faults.py``); the request log is at
``GET /_emulator/requests`` and ``EmulatorServer.requests``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable, List, Optional

DEFAULT_DELAY = 0.02
# Not a plain word: error messages redact cookie values, and "emulator" is in many of them.
DEMO_COOKIES = {"__Secure-next-auth.session-token": "emulator-demo-session"}
#: Seconds an in-flight answer may take to finish when a server stops.
SHUTDOWN_GRACE = 0.5
_BASE_PATHS = {
    "cromicle": "", "openassistant": "", "vitalentum": "", "lockchat": "", "anthropic": "",
    "openai": "/v1", "ollama": "/ollama",
}


def make_app(delay: float = DEFAULT_DELAY):
    """The aiohttp application (for callers that run it themselves)."""
    from .app import make_app as build

    return build(delay=delay)


def base_url_for(provider_name: str, emulator_url: str) -> str:
    """The base URL that points provider ``provider_name`` at the emulator."""
    key = str(provider_name).strip().lower()
    if key not in _BASE_PATHS:
        raise ValueError(f"the emulator does not speak {provider_name!r}; "
                         f"it speaks {', '.join(sorted(_BASE_PATHS))}")
    return emulator_url.rstrip("/") + _BASE_PATHS[key]


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmulatorServer:
    """An emulator serving from a daemon thread; starts at once, ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = DEFAULT_DELAY):
        self.app = make_app(delay)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner = None
        self._failure: Optional[BaseException] = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(host, port, ready),
                                        name="ipychat-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._failure is not None:
            failure = self._failure or RuntimeError("the emulator did not start within 10 s")
            self.stop()
            raise failure

    def _serve(self, host: str, port: int, ready: threading.Event) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(self.app, handler_cancellation=True,
                                         shutdown_timeout=SHUTDOWN_GRACE)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host, port)
            self._loop.run_until_complete(site.start())
            bound = self._runner.addresses[0]
            self.url = _url(host, bound[1])
        except BaseException as err:  # reported to the starting thread
            self._failure = err
            ready.set()
            return
        ready.set()
        self._loop.run_forever()

    @property
    def state(self):
        from .wire import STATE

        return self.app[STATE]

    @property
    def requests(self) -> list:
        """Every protocol request served so far (``requestlog.Recorded``), oldest first."""
        return self.state.log.entries()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds, re-checked on each log change; bounded."""
        return self.state.log.wait_for(predicate, timeout)

    @property
    def deleted_chats(self) -> List[str]:
        chats = self.state.extra.get("openassistant")
        return list(chats.deleted) if chats else []

    def reset(self) -> None:
        """Forget queued faults, the request log and OpenAssistant chats."""
        from .app import reset_state

        reset_state(self.state)

    def stop(self) -> None:
        loop = self._loop
        if loop.is_closed():
            return
        if loop.is_running() and self._runner is not None:
            done = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            done.result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            loop.close()

    def __enter__(self) -> "EmulatorServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"


_lock = threading.Lock()
_shared: Optional[EmulatorServer] = None
_started: List[EmulatorServer] = []


def start_emulator(host: str = "127.0.0.1", port: int = 0, delay: float = DEFAULT_DELAY) -> str:
    """Start an emulator in a daemon thread and return its base URL."""
    server = EmulatorServer(host, port, delay)
    _started.append(server)  # keeps it reachable for the life of the process
    return server.url


def shared_emulator() -> str:
    """The URL of this process's one shared emulator, started on first use."""
    global _shared
    with _lock:
        if _shared is None or _shared._loop.is_closed():
            _shared = EmulatorServer()
        return _shared.url


__all__ = ["DEMO_COOKIES", "EmulatorServer", "base_url_for", "make_app", "shared_emulator",
           "start_emulator"]
