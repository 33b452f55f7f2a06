"""Kept-alive HTTP connections: one aiohttp connector per running event loop.

Where connections live: every call on a loop (the kernel's, ``loopthread``'s,
a panel subshell's, an ``asyncio.run``) borrows that loop's ``Pool``, whose
``TCPConnector`` keeps the connections a call read to the end, keyed by
aiohttp per scheme, host, port, TLS settings and proxy. Each call still makes
its own ``ClientSession`` on it (``http.open_session``), so cookies, default
headers (a key) and timeouts stay per call; only sockets are shared.

Where they die:

- at the end of a call that stopped before the end of its response
  (cancelled, stopped early, timed out, failed half-way: ``PooledResponse``),
  so a half-read connection is never handed back; a response read to its
  end goes back to the pool even when the call then failed on its content;
- after ``KEEPALIVE`` seconds idle (the connector's own timer);
- when the loop shuts down through ``loop.shutdown_asyncgens()`` (what
  ``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio call): the pool
  keeps an async generator on the loop whose ``finally`` closes it;
- on ``close_all()`` (``%unload_ext ipychat``): idle connections at once,
  those of answers still streaming when those answers end.

A loop closed without ``shutdown_asyncgens`` cannot run a close any more:
its pool is dropped on the next call on any loop, and the sockets go with
the garbage collector.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import threading
from typing import Dict, Optional, Set

import aiohttp

#: Seconds an idle connection is kept: longer than a pause between cells in a
#: run, shorter than common servers' own idle limits (nginx and aiohttp 75 s).
KEEPALIVE = 30.0
#: After its end marker, how much of a body is read so that the connection can
#: be reused (the chunked terminator is 5 bytes), and for how long at most.
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 0.25
#: How long a call waits for the sockets it closed to be shut (one or two
#: turns of the loop; the bound is for a transport that never reports back).
SETTLE_SECONDS = 1.0
#: At interpreter exit, how long to wait for a loop in another thread
#: (``loopthread``'s) to close its pool.
EXIT_SECONDS = 2.0

_pools: Dict[asyncio.AbstractEventLoop, "Pool"] = {}
_lock = threading.Lock()
_close_tasks: Set[asyncio.Task] = set()  # strong references until they end
#: Per loop, the ``closed`` futures of connections being shut (``settle``).
_shutting: Dict[asyncio.AbstractEventLoop, Set[asyncio.Future]] = {}
# Newer aiohttp can drop an idle TLS connection without waiting for the
# peer's close_notify (up to 30 s at loop shutdown otherwise).
_ABORT_SSL = "abort_ssl" in inspect.signature(aiohttp.TCPConnector.close).parameters


class PooledResponse(aiohttp.ClientResponse):
    """A response that goes back to the pool only when read to its end."""

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                await self._drain()
            else:
                # Cancelled, stopped or failed: the server must see us leave,
                # and the next call must not read this one's leftovers.
                self.close()
        except BaseException:
            self.close()
            raise
        finally:
            await super().__aexit__(exc_type, exc, tb)

    def close(self) -> None:
        """Drop the connection at once: no TLS goodbye for a connection cut
        mid-answer. The call then waits until the socket is shut (``settle``),
        so the server sees the client leave before the call returns."""
        connection = self.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is not None and protocol.is_connected() and _running_loop() is not None:
            closed = protocol.closed
            protocol.abort()
            _note_closing(closed)
        super().close()

    async def _drain(self) -> None:
        # A provider stops at its end marker ([DONE], message_stop, a done
        # line); the end of the body (the chunked terminator) is usually right
        # behind it. Unread bytes make aiohttp close the connection on release.
        if self.content.at_eof():
            return
        try:
            ended = await asyncio.wait_for(self._read_rest(), DRAIN_SECONDS)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            ended = False
        if not ended:
            self.close()

    async def _read_rest(self) -> bool:
        total = 0
        while total <= DRAIN_BYTES:
            data = await self.content.read(DRAIN_BYTES)
            if not data:
                return True
            total += len(data)
        return False


class Pool:
    """The kept-alive connections of one event loop; made and used on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # limit=0: no cap across calls (each call used to have its own
        # connector, so 50 answers at once never queued for a connection).
        self.connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE)
        self.users = 0  # sessions open on it; touched on the loop only
        self.retired = False
        self._closed = False
        self._guard = self._close_with_loop()
        _start(self._guard)

    async def _close_with_loop(self):
        # The loop's first-iteration hook registered this generator, so
        # shutdown_asyncgens() runs this finally.
        try:
            yield
        finally:
            await self._close_now()

    def lease(self) -> aiohttp.TCPConnector:
        self.users += 1
        return self.connector

    async def give_back(self) -> None:
        self.users -= 1
        if self.retired and self.users == 0:
            await self.aclose()

    async def aclose(self) -> None:
        # Through the guard, so that shutdown_asyncgens() finds it finished.
        try:
            await self._guard.aclose()
        except RuntimeError:  # its finally runs already: the loop is shutting down
            pass
        await self._close_now()  # when the guard had finished before

    async def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        _forget(self)
        await (self.connector.close(abort_ssl=True) if _ABORT_SSL else self.connector.close())

    def retire(self) -> None:
        """Close from any thread: idle connections now, busy ones when their call ends."""
        self.retired = True
        if self.loop.is_closed():
            self.abandon()
        else:
            self.loop.call_soon_threadsafe(self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.users == 0 and not self._closed:
            task = self.loop.create_task(self.aclose())
            _close_tasks.add(task)
            task.add_done_callback(_close_tasks.discard)

    def abandon(self) -> None:
        """For a loop closed without shutdown_asyncgens: nothing can run on it.

        Finish the guard here, so that its finaliser never schedules a close
        on the closed loop; the connector's close then finds nothing to await.
        """
        self._closed = True
        _forget(self)
        _run_now(self._guard.aclose())
        _run_now(self.connector.close())


def _start(agen) -> None:
    """Run ``agen`` to its first ``yield`` without awaiting anything.

    ``asend`` calls the thread's first-iteration hook, which the running
    asyncio loop set: that is how the loop learns of the generator.
    """
    if not _run_now(agen.asend(None)):
        raise RuntimeError("the pool's guard awaited before its first yield")


def _run_now(awaitable) -> bool:
    """Drive an awaitable that needs no event loop; True when it finished."""
    step = awaitable.__await__()
    try:
        step.send(None)
    except StopIteration:
        return True
    except StopAsyncIteration:  # an async generator that was already finished
        return True
    step.close()
    return False


def _note_closing(closed: Optional[asyncio.Future]) -> None:
    """Make ``settle`` on the loop wait for ``closed``."""
    if closed is None or closed.done():
        return
    with _lock:
        _shutting.setdefault(closed.get_loop(), set()).add(closed)
    closed.add_done_callback(_shut)


def _shut(closed: asyncio.Future) -> None:
    loop = closed.get_loop()
    with _lock:
        waiting = _shutting.get(loop, set())
        waiting.discard(closed)
        if not waiting:
            _shutting.pop(loop, None)
    if not closed.cancelled():
        closed.exception()  # a connection lost with an error: no news here


async def settle() -> None:
    """Wait until the connections closed on this loop are shut (bounded).

    Shutting a socket takes one more turn of the loop, and the caller may
    block the loop right after the call (a kernel cell, a test) or close it:
    the server must have seen the client leave by then.
    """
    with _lock:
        waiting = list(_shutting.get(asyncio.get_running_loop(), ()))
    if waiting:
        await asyncio.wait(waiting, timeout=SETTLE_SECONDS)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # e.g. a response collected by the garbage collector
        return None


def _forget(pool: Pool) -> None:
    with _lock:
        if _pools.get(pool.loop) is pool:
            del _pools[pool.loop]


def pool_for_running_loop() -> Pool:
    """The running loop's pool, made on first use; pools of closed loops are dropped."""
    loop = asyncio.get_running_loop()
    with _lock:
        pool = _pools.get(loop)
        stale = [p for other, p in _pools.items() if other.is_closed()]
        for other in [other for other in _shutting if other.is_closed()]:
            del _shutting[other]
    for old in stale:
        old.abandon()
    if pool is None or pool.retired or pool._closed:
        pool = Pool(loop)
        with _lock:
            _pools[loop] = pool
    return pool


def close_all() -> None:
    """Close every loop's pool (``%unload_ext ipychat``); callable from any thread."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.retire()


def current_pool() -> Optional[Pool]:
    """The running loop's pool if it has one (for tests and benchmarks)."""
    with _lock:
        return _pools.get(asyncio.get_running_loop())


async def close_current() -> None:
    """Close the running loop's pool now (before closing a loop made by hand)."""
    pool = current_pool()
    if pool is not None:
        await pool.aclose()


@atexit.register
def _close_at_exit() -> None:
    """Close what the loops still keep, so that exit reports no unclosed connector.

    Loops running in other threads (``loopthread``'s, a panel subshell's)
    still run while atexit handlers do; a loop that is not running cannot
    close anything now, and the process exit closes its sockets.
    """
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        if pool.loop.is_closed():
            pool.abandon()
        elif pool.loop.is_running() and _running_loop() is not pool.loop:
            done = asyncio.run_coroutine_threadsafe(pool.aclose(), pool.loop)
            try:
                done.result(EXIT_SECONDS)
            except Exception:  # too slow or failed: the exit closes the sockets anyway
                pass
