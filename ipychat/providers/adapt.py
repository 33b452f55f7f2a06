"""One way to run any provider: ``stream_events(provider, model, messages, **kwargs)``.

ipychat's own providers (``HTTPProvider``) take every argument and keep the
control ones out of request bodies themselves. A foreign g4f-style class does
not: whatever it gets in ``**kwargs`` may end up in its request body (the
original g4f leaked ``stream=`` that way). So it gets only ``proxy`` and body
options, plus a control argument its signature names explicitly.

A synchronous ``create_completion`` runs in a worker thread that hands chunks
to the loop; closing or cancelling the stream closes that sync generator
(after its current chunk: a blocking read inside it cannot be interrupted).

A foreign class's chunks become events (``events.from_foreign``): text, and
the reasoning, usage and finish objects of today's gpt4free.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from typing import AsyncIterator, Callable, Iterable

from .. import errors
from ..events import Event, from_foreign
from ..messages import check_messages, folded, has_images
from .base import CONTROL_ARGS, IMAGE_HINT, TOOLS_HINT, HTTPProvider

#: Our control arguments: never handed to a foreign class unless it names them.
HELD_BACK = (*CONTROL_ARGS, "api_key_env")
#: How many chunks a sync worker may produce ahead of the consumer.
AHEAD = 32


def label_of(provider) -> str:
    cls = provider if isinstance(provider, type) else type(provider)
    return getattr(cls, "__name__", str(cls))


def check_provider(provider, where: str = "") -> object:
    """``provider`` itself, or a ``UsageError`` if it cannot produce chat text."""
    if hasattr(provider, "create_async_generator") or hasattr(provider, "create_completion"):
        return provider
    name = where or label_of(provider)
    raise errors.UsageError(f"{name!r} is not a chat provider",
                            hint="It needs create_async_generator or create_completion.")


def is_own(provider) -> bool:
    cls = provider if isinstance(provider, type) else type(provider)
    return issubclass(cls, HTTPProvider)


def named_parameters(method) -> set:
    """Parameter names ``method`` declares explicitly (not via ``**kwargs``)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return set()
    explicit = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in explicit}


def foreign_kwargs(method, kwargs: dict) -> dict:
    named = named_parameters(method)
    passed = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if key in HELD_BACK and key != "proxy" and key not in named:
            continue
        passed[key] = value
    passed.pop("stream", None)  # we choose stream ourselves
    return passed


async def stream_events(provider, model, messages, **kwargs) -> AsyncIterator[Event]:
    """The events of one answer from ``provider`` (a class or an instance)."""
    check_provider(provider)
    if is_own(provider):
        events = provider.stream_events(model, messages, **kwargs)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event
        return
    messages = check_messages(messages)
    if has_images(messages) and not getattr(provider, "takes_images", False):
        raise errors.UsageError(f"{label_of(provider)} does not say it can see images",
                                hint="A class that can sets takes_images = True. " + IMAGE_HINT)
    if kwargs.pop("tools", None):  # we run tools only where we read the protocol ourselves
        raise errors.UsageError(f"{label_of(provider)} cannot call tools", hint=TOOLS_HINT)
    events = foreign_events(provider, model, folded(messages), kwargs)
    async with contextlib.aclosing(events):
        try:
            async for event in events:
                yield event
        except errors.ChatError:
            raise
        except Exception as err:
            raise wrapped(err, provider, kwargs) from err


def wrapped(err: Exception, provider, kwargs: dict) -> errors.ChatError:
    secrets = [kwargs.get("api_key"), *(kwargs.get("cookies") or {}).values()]
    text = errors.redact(f"{type(err).__name__}: {err}", secrets)
    if kwargs.get("proxy"):
        text = text.replace(str(kwargs["proxy"]), errors.hide_credentials(kwargs["proxy"]))
    return errors.ChatError(errors.one_line(text), provider=label_of(provider))


async def foreign_events(provider, model, messages, kwargs: dict) -> AsyncIterator[Event]:
    """Events from a g4f-style class's chunks; chunks that mean nothing are skipped."""
    method = getattr(provider, "create_async_generator", None)
    if method is not None:
        chunks = method(model, messages, **foreign_kwargs(method, kwargs))
        if inspect.isawaitable(chunks):
            chunks = await chunks
    else:
        method = provider.create_completion
        passed = foreign_kwargs(method, kwargs)
        chunks = thread_chunks(lambda: method(model, messages, stream=True, **passed))
    async with contextlib.aclosing(as_async(chunks)) as chunks:
        async for chunk in chunks:
            event = from_foreign(chunk)
            if event is not None:
                yield event


async def as_async(source) -> AsyncIterator[object]:
    """Chunks of whatever a foreign method returned: async or sync iterable, or text."""
    if isinstance(source, str):
        yield source
        return
    chunks = source if hasattr(source, "__aiter__") else thread_chunks(lambda: source)
    has_aclose = hasattr(chunks, "aclose")
    async with contextlib.aclosing(chunks) if has_aclose else contextlib.nullcontext():
        async for chunk in chunks:
            yield chunk


async def thread_chunks(start: Callable[[], Iterable]) -> AsyncIterator[object]:
    """Iterate the sync iterable ``start()`` returns in a worker thread."""
    worker = SyncWorker(start, asyncio.get_running_loop())
    worker.start()
    try:
        while True:
            kind, value = await worker.items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            worker.credits.release()
            yield value
    finally:
        worker.stop()


class SyncWorker(threading.Thread):
    """Runs a blocking iterator, at most ``AHEAD`` chunks ahead of the consumer.

    The thread itself closes the generator: a generator cannot be closed from
    another thread while it runs.
    """

    def __init__(self, start: Callable[[], Iterable], loop: asyncio.AbstractEventLoop):
        super().__init__(name="ipychat-sync-provider", daemon=True)
        self._start_iter = start
        self._loop = loop
        self._stopped = threading.Event()
        self.items: asyncio.Queue = asyncio.Queue()
        self.credits = threading.Semaphore(AHEAD)

    def stop(self) -> None:
        self._stopped.set()
        self.credits.release()  # wake the worker if it waits for room

    def run(self) -> None:
        try:
            self._produce()
        except BaseException as err:  # handed to the consumer, raised there
            self._send("error", err)
        else:
            self._send("end", None)

    def _produce(self) -> None:
        chunks = self._start_iter()
        chunks = [chunks] if isinstance(chunks, str) else chunks
        iterator = iter(chunks)
        try:
            while self.credits.acquire() and not self._stopped.is_set():
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                self._send("chunk", chunk)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _send(self, kind: str, value) -> None:
        try:
            self._loop.call_soon_threadsafe(self.items.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass
