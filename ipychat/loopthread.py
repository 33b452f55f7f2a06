"""A private event loop in a daemon thread, for callers without a usable loop.

Synchronous code (``create_completion``, terminal IPython with autoawait off,
plain scripts) cannot ``await``; and inside a notebook cell the thread's own
loop is already running, so ``asyncio.run`` raises. Such callers hand their
coroutine to this loop instead and wait for it in short slices, so that a
Ctrl-C still lands in the waiting thread; on ``KeyboardInterrupt`` the task is
cancelled and its cleanup (closing the HTTP connection) awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import AsyncIterator, Awaitable, Callable, Iterator, Optional, TypeVar

T = TypeVar("T")

#: How long one wait slice lasts; bounds how late a Ctrl-C is seen.
SLICE = 0.05
#: How long a cancelled task may take to clean up before we give up on it.
CLEANUP_LIMIT = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide private loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_loop.run_forever, name="ipychat-loop", daemon=True
            )
            thread.start()
        return _loop


def _wait(future: concurrent.futures.Future, limit: float | None = None):
    """Wait for ``future`` in slices (so signals are handled); return its result."""
    waited = 0.0
    while True:
        try:
            return future.result(timeout=SLICE)
        except concurrent.futures.TimeoutError:
            waited += SLICE
            if limit is not None and waited >= limit:
                raise


def _cancel_and_wait(future: concurrent.futures.Future) -> None:
    future.cancel()  # thread-safe: schedules task.cancel() on its loop
    try:
        _wait(future, CLEANUP_LIMIT)
    except BaseException:  # cancelled, failed or too slow: cleanup is best effort
        pass


def run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` on the private loop and return its result.

    KeyboardInterrupt while waiting cancels the coroutine, waits (bounded)
    for its cleanup and re-raises.
    """
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return _wait(future)
    except BaseException:
        _cancel_and_wait(future)
        raise


_ITEM, _ERROR, _END = range(3)


def iterate_sync(agen: AsyncIterator[T], idle: Optional[Callable[[], None]] = None
                 ) -> Iterator[T]:
    """Iterate an async generator from synchronous code.

    Closing the returned generator early (``break``, ``close()``, an
    exception or Ctrl-C in the consumer) cancels the async generator, which
    closes its HTTP response. ``idle()`` is called in this thread whenever a
    wait slice passes without an item (e.g. to flush a view).
    """
    items: queue.Queue = queue.Queue()

    async def pump():
        try:
            async for item in agen:
                items.put((_ITEM, item))
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # handed to the consumer thread
            items.put((_ERROR, err))
        else:
            items.put((_END, None))

    future = asyncio.run_coroutine_threadsafe(pump(), background_loop())
    try:
        while True:
            kind, value = _next_item(items, idle)
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        if not future.done():
            _cancel_and_wait(future)


def _next_item(items: queue.Queue, idle):
    while True:
        try:
            return items.get(timeout=SLICE)
        except queue.Empty:
            if idle is not None:
                idle()
