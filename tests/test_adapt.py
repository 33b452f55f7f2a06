"""stream_events: ipychat's own providers get every argument; foreign g4f-style
classes get only proxy and body options; sync ones run in a worker thread
that stops when the stream is closed or cancelled."""

import asyncio
import threading
from typing import Optional

import aiohttp
import pytest

from ipychat import errors
from ipychat.providers import OpenAIChat, get_provider, stream_events
from ipychat.providers.adapt import AHEAD
from tests.support.server import stream_pieces

MESSAGES = [{"role": "user", "content": "hi"}]
KEY = "sk-adapt-Very-Secret-0123456789"
BOUND = 5  # seconds any wait on another thread may take at most


async def collect(provider, model=None, messages=MESSAGES, **kwargs):
    events = stream_events(provider, model, messages, **kwargs)
    return [event.text async for event in events if event.kind == "text"]


class SyncG4F:
    """A 2023-style synchronous provider: whatever lands in kwargs is its body."""

    seen = []

    @classmethod
    def create_completion(cls, model, messages, stream, **kwargs):
        cls.seen.append({"model": model, "stream": stream, **kwargs})
        yield "Hel"
        yield ""
        yield None  # later g4f yields non-text objects too: skipped
        yield "lo"


class NotAProvider:
    pass


def worker_threads():
    return [t for t in threading.enumerate() if t.name == "ipychat-sync-provider"]


def body_route(pieces=(b"ok",)):
    async def handler(request, rec):
        return await stream_pieces(request, list(pieces))
    return [("POST", "/chat", handler)]


def leaky_async_class(url: str):
    """g4f async style: posts {"model", **kwargs} as its body, so anything passed leaks."""

    class LeakyAsync:
        @classmethod
        async def create_async_generator(cls, model, messages, proxy: Optional[str] = None,
                                         **kwargs):
            async with aiohttp.ClientSession() as session:
                async with session.post(url + "/chat", json={"model": model, **kwargs},
                                        proxy=proxy) as response:
                    async for chunk in response.content.iter_any():
                        yield chunk.decode()

    return LeakyAsync


async def test_own_provider_gets_every_argument(make_server):
    async def handler(request, rec):
        return await stream_pieces(request, [
            b'data: {"choices": [{"delta": {"content": "yes"}}]}\n\ndata: [DONE]\n\n'],
            content_type="text/event-stream")
    server = make_server([("POST", "/v1/chat/completions", handler)])
    text = await collect(OpenAIChat, "m", base_url=server.url + "/v1", api_key=KEY,
                         timeout=5, proxy=None, temperature=0.5)
    assert text == ["yes"]
    [rec] = server.requests
    assert rec.headers["Authorization"] == f"Bearer {KEY}"
    assert rec.json() == {"model": "m", "messages": MESSAGES, "temperature": 0.5,
                          "stream": True, "stream_options": {"include_usage": True}}


async def test_foreign_async_class_gets_no_control_arguments(make_server):
    server = make_server(body_route([b"an", b"swer"]))
    provider = leaky_async_class(server.url)
    text = await collect(provider, "m", base_url="http://elsewhere.invalid", timeout=5,
                         cookies={"sid": "c00kie-value"}, api_key=KEY, api_key_env="X",
                         stream=True, top_p=0.9, seed=None)
    assert "".join(text) == "answer"
    assert server.requests[0].json() == {"model": "m", "top_p": 0.9}


async def test_foreign_class_gets_what_its_signature_names():
    seen = {}

    class Named:
        @classmethod
        async def create_async_generator(cls, model, messages, proxy=None, api_key=None,
                                         timeout=None, **kwargs):
            seen.update(proxy=proxy, api_key=api_key, timeout=timeout, kwargs=kwargs)
            yield "x"

    await collect(Named, proxy="http://127.0.0.1:9", api_key=KEY, timeout=3,
                  base_url="http://elsewhere.invalid", temperature=1)
    assert seen == {"proxy": "http://127.0.0.1:9", "api_key": KEY, "timeout": 3,
                    "kwargs": {"temperature": 1}}


async def test_sync_class_runs_in_a_worker_thread():
    SyncG4F.seen.clear()
    text = await collect(SyncG4F, "m", base_url="http://elsewhere.invalid", timeout=5,
                         proxy="http://127.0.0.1:9", max_tokens=9)
    assert text == ["Hel", "lo"]
    assert SyncG4F.seen == [{"model": "m", "stream": True, "proxy": "http://127.0.0.1:9",
                             "max_tokens": 9}]


async def test_sync_class_returning_a_list():
    class Listing:
        @staticmethod
        def create_completion(model, messages, stream, **kwargs):
            return ["a", "b"]

    assert await collect(Listing) == ["a", "b"]


async def test_early_close_stops_the_sync_generator():
    produced, ahead, closed = [], threading.Event(), threading.Event()

    class Endless:
        @classmethod
        def create_completion(cls, model, messages, stream, **kwargs):
            try:
                while True:
                    produced.append(len(produced))
                    if len(produced) == AHEAD + 2:
                        ahead.set()
                    yield f"{len(produced)} "
            finally:
                closed.set()

    chunks = stream_events(Endless, None, MESSAGES)
    assert [(await chunks.__anext__()).text, (await chunks.__anext__()).text] == ["1 ", "2 "]
    # The worker now runs as far ahead as allowed, then waits for room.
    assert await asyncio.to_thread(ahead.wait, BOUND)
    await chunks.aclose()
    assert await asyncio.to_thread(closed.wait, BOUND)
    for thread in worker_threads():
        await asyncio.to_thread(thread.join, BOUND)
    assert worker_threads() == []
    assert len(produced) == AHEAD + 2


async def test_cancel_stops_the_sync_generator():
    gate, started, closed = threading.Event(), threading.Event(), threading.Event()
    after_cancel = []

    class Slow:
        @classmethod
        def create_completion(cls, model, messages, stream, **kwargs):
            try:
                yield "first"
                started.set()
                gate.wait(BOUND)
                after_cancel.append("second")
                yield "second"
                after_cancel.append("third")
                yield "third"
            finally:
                closed.set()

    got = []

    async def consume():
        async for event in stream_events(Slow, None, MESSAGES):
            got.append(event.text)

    task = asyncio.ensure_future(consume())
    assert await asyncio.to_thread(started.wait, BOUND)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert await asyncio.to_thread(closed.wait, BOUND)
    assert got == ["first"] and after_cancel == ["second"]


async def test_foreign_errors_become_one_line_chat_errors():
    class Broken:
        @classmethod
        def create_completion(cls, model, messages, stream, **kwargs):
            yield "a"
            raise ValueError(f"bad\nthing with {KEY}")

    with pytest.raises(errors.ChatError) as caught:
        await collect(Broken, api_key=KEY)
    err = caught.value
    assert type(err) is errors.ChatError and err.provider == "Broken"
    assert str(err) == "Broken: ValueError: bad thing with ***."


async def test_foreign_chat_errors_pass_through():
    class Refusing:
        @classmethod
        async def create_async_generator(cls, model, messages, **kwargs):
            raise errors.RateLimited("no", retry_after="3")
            yield  # pragma: no cover

    with pytest.raises(errors.RateLimited):
        await collect(Refusing)


async def test_not_a_provider():
    with pytest.raises(errors.UsageError, match="not a chat provider"):
        await collect(NotAProvider)


def test_registry_loads_dotted_paths_and_checks_them():
    assert get_provider("tests.test_adapt:SyncG4F") is SyncG4F
    with pytest.raises(errors.UsageError) as caught:
        get_provider("tests.test_adapt:NotAProvider")
    assert "'tests.test_adapt:NotAProvider' is not a chat provider" in str(caught.value)
    assert "create_async_generator or create_completion" in str(caught.value)


async def test_bad_messages_fail_before_calling_a_foreign_class():
    SyncG4F.seen.clear()
    with pytest.raises(errors.UsageError):
        await collect(SyncG4F, messages=[])
    assert SyncG4F.seen == []

