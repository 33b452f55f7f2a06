"""The g4f-style entry points shared by every provider: whole text, sync and
async, control arguments kept out of bodies, stopping early closes the
connection. Each test runs against every built-in provider through a real
recording server; the ``WIRES`` table says how each one's server answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest
from aiohttp import web
from multidict import CIMultiDict

from ipychat import errors
from ipychat.providers import (
    AbstractProvider,
    AsyncGeneratorProvider,
    Cromicle,
    Lockchat,
    OpenAssistant,
    Vitalentum,
)
from tests.support.server import stream_pieces

MESSAGES = [{"role": "user", "content": "hi"}]


# -- how each provider's server answers ---------------------------------------


def data_line(value) -> bytes:
    """``data: {json}`` with raw UTF-8 (so pieces can split a character)."""
    return b"data: " + json.dumps(value, ensure_ascii=False).encode() + b"\n"


def sse_chunk(text: str) -> bytes:
    """One OpenAI-style chunk event carrying ``text``."""
    return data_line({"choices": [{"delta": {"content": text}}]}) + b"\n"


def oa_token(text: str) -> bytes:
    return data_line({"event_type": "token", "text": text}) + b"\n"


DONE = b"data: [DONE]\n\n"


# An OpenAI-style SSE answer: a role-only chunk, text, a comment, an empty delta, [DONE].
SSE_TEXT = "Hé, llo wörld 😀"
SSE_REPLY = b"".join([
    data_line({"choices": [{"delta": {"role": "assistant"}}]}), b"\n",
    sse_chunk("Hé, "), sse_chunk("llo wörld"), b": keep-alive\n\n", sse_chunk(" 😀"),
    data_line({"choices": [{"delta": {}, "finish_reason": "stop"}]}), b"\n",
    data_line({"choices": []}), b"\n",
    DONE,
])


def split_cases(reply: bytes) -> dict:
    """``reply`` (LF line ends) cut into pieces at awkward places, by case name."""
    crlf = reply.replace(b"\n", b"\r\n")
    halves = [p for line in reply.splitlines(keepends=True)
              for p in (line[: len(line) // 2], line[len(line) // 2:])]
    cases = {
        "whole": [reply],
        "mid_line": halves,
        "crlf_whole": [crlf],
        "cr_at_piece_end_lf_next": re.split(b"(?<=\r)", crlf),
        "cr_only": re.split(b"(?<=\r)", reply.replace(b"\n", b"\r")),
        "one_byte_per_piece": [crlf[i:i + 1] for i in range(len(crlf))],
    }
    return {name: [p for p in pieces if p] for name, pieces in cases.items()}


def json_reply(data, status: int = 200):
    async def handler(request, rec):
        return web.json_response(data, status=status)

    return handler


def streaming(pieces, *, hold: bool = False, status: int = 200, headers=None,
              content_type: str = "text/event-stream"):
    """A handler that sends ``pieces`` and then, with ``hold``, keeps the stream open."""

    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type=content_type, status=status,
                                   headers=headers, hold=asyncio.Event() if hold else None)

    return handler


def silent():
    """A handler that never sends a byte (until the client leaves)."""

    async def handler(request, rec):
        await asyncio.Event().wait()

    return handler


OA_STEPS = [
    ("POST", "/api/chat", json_reply({"id": "chat-1"})),
    ("POST", "/api/chat/prompter_message", json_reply({"id": "parent-1"})),
    ("POST", "/api/chat/assistant_message", json_reply({"id": "msg-1"})),
    ("DELETE", "/api/chat", json_reply({})),
]
OA_COOKIES = {"__Secure-next-auth.session-token": "cookie-value-42"}


@dataclass(frozen=True)
class Wire:
    """What a provider's server sends, and where."""

    cls: type
    stream_path: str
    frame: Callable[[str], bytes]
    end: bytes = b""
    bad_frame: bytes = b"data: {not json\n\n"
    error_frame: Optional[bytes] = None
    content_type: str = "text/event-stream"
    setup: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)

    def pieces(self, texts) -> list:
        return [self.frame(t) for t in texts] + ([self.end] if self.end else [])

    def serve(self, make_server, answer):
        """A server whose answer endpoint is ``answer`` (a handler)."""
        return make_server([("POST", self.stream_path, answer), *self.setup])

    def serve_texts(self, make_server, texts):
        return self.serve(make_server, streaming(self.pieces(texts),
                                                 content_type=self.content_type))

    def call(self, server, **extra) -> dict:
        return {"base_url": server.url, **self.kwargs, **extra}

    def answer_record(self, server):
        return next(r for r in server.requests
                    if r.path == self.stream_path and r.method == "POST")


OPENAI_ERROR = b'data: {"error": {"message": "model overloaded"}}\n\n'
WIRES = {
    "cromicle": Wire(Cromicle, "/chat", str.encode, bad_frame=b"\xff\xfe",
                     content_type="text/plain"),
    "openassistant": Wire(
        OpenAssistant, "/api/chat/events", oa_token,
        error_frame=b'data: {"event_type": "error", "error": "model overloaded"}\n\n',
        setup=OA_STEPS, kwargs={"cookies": OA_COOKIES},
    ),
    "vitalentum": Wire(Vitalentum, "/api/converse-edge", sse_chunk, end=DONE,
                       error_frame=OPENAI_ERROR),
    "lockchat": Wire(Lockchat, "/v1/chat/completions", sse_chunk, end=DONE,
                     error_frame=OPENAI_ERROR),
}
wires = pytest.mark.parametrize("wire", list(WIRES.values()), ids=list(WIRES))


def headers_of(recorded) -> CIMultiDict:
    """A recorded request's headers, looked up case-insensitively as HTTP means."""
    return CIMultiDict(recorded.headers)


def json_keys(value) -> set:
    """Every key of every dict nested in ``value``."""
    if isinstance(value, dict):
        return set(value) | set().union(*(json_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(json_keys(v) for v in value))
    return set()


# -- whole text, sync and async -----------------------------------------------


@wires
async def test_create_async_returns_the_whole_text(make_server, wire):
    server = wire.serve_texts(make_server, ["Hel", "lo ", "wörld"])
    text = await wire.cls.create_async("some-model", MESSAGES, **wire.call(server))
    assert text == "Hello wörld"


def check_create_completion(make_server, wire, stream: bool) -> None:
    server = wire.serve_texts(make_server, ["Hel", "lo"])
    chunks = list(wire.cls.create_completion("some-model", MESSAGES, stream=stream,
                                             **wire.call(server)))
    assert "".join(chunks) == "Hello"
    assert all(chunks) and (stream or len(chunks) == 1)


@wires
@pytest.mark.parametrize("stream", [True, False])
def test_create_completion_without_an_event_loop(make_server, wire, stream):
    check_create_completion(make_server, wire, stream)


@wires
@pytest.mark.parametrize("stream", [True, False])
async def test_create_completion_inside_a_running_event_loop(make_server, wire, stream):
    asyncio.get_running_loop()  # the notebook case: this thread's loop is busy
    check_create_completion(make_server, wire, stream)


# -- control arguments never reach a body -------------------------------------


async def via_async_generator(cls, **kwargs):
    return [t async for t in cls.create_async_generator("some-model", MESSAGES, **kwargs)]


async def via_completion(cls, stream, **kwargs):
    return list(cls.create_completion("some-model", MESSAGES, stream=stream, **kwargs))


@wires
@pytest.mark.parametrize("via", ["async_generator", "completion_stream", "completion_whole"])
async def test_control_arguments_never_reach_a_request_body(make_server, wire, via):
    server = wire.serve_texts(make_server, ["ok"])
    control = {"timeout": 5, "proxy": None, "api_key": "sk-control-123",
               "cookies": OA_COOKIES, **wire.call(server)}
    if via == "async_generator":
        chunks = await via_async_generator(wire.cls, stream=True, **control)
    else:
        chunks = await via_completion(wire.cls, via == "completion_stream", **control)
    assert "".join(chunks) == "ok"
    bodies = [r.json() for r in server.requests if r.body]
    assert bodies, "the provider sent no JSON body at all"
    assert not json_keys(bodies) & {"proxy", "base_url", "timeout", "cookies", "api_key"}
    # Lockchat's protocol has its own "stream": true; nobody else sends one.
    streams = [b.get("stream") for b in bodies if "stream" in json_keys(b)]
    assert streams == ([True] if wire.cls is Lockchat else [])
    assert "sk-control-123" not in str([r.headers for r in server.requests])


# -- stopping early closes the connection --------------------------------------


async def stop_by_break(wire, kwargs):
    agen = wire.cls.create_async_generator("some-model", MESSAGES, **kwargs)
    async with contextlib.aclosing(agen) as chunks:
        async for text in chunks:
            assert text == "Hello"
            break


async def stop_by_cancel(wire, kwargs):
    got_text = asyncio.Event()

    async def consume():
        async for _ in wire.cls.create_async_generator("some-model", MESSAGES, **kwargs):
            got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def stop_by_sync_close(wire, kwargs):
    chunks = wire.cls.create_completion("some-model", MESSAGES, stream=True, **kwargs)
    assert next(chunks) == "Hello"
    chunks.close()


@wires
@pytest.mark.parametrize("stop", [stop_by_break, stop_by_cancel, stop_by_sync_close],
                         ids=["break", "cancel", "sync_close"])
async def test_stopping_early_closes_the_connection(make_server, wire, stop):
    server = wire.serve(make_server, streaming([wire.frame("Hello")], hold=True,
                                               content_type=wire.content_type))
    await stop(wire, wire.call(server))
    # Blocking wait on purpose: the close must not depend on this loop running later.
    assert server.wait_for(lambda: wire.answer_record(server).disconnected, 10)
    if wire.cls is OpenAssistant:
        assert server.wait_for(lambda: server.requests[-1].method == "DELETE", 10)
        assert server.requests[-1].query == {"chat_id": "chat-1"}


# -- input checked before anything is sent --------------------------------------


@wires
@pytest.mark.parametrize("messages", [[], "hi", [{"content": "no role"}]])
async def test_bad_messages_raise_usage_error_before_any_request(make_server, wire, messages):
    server = wire.serve_texts(make_server, ["never"])
    with pytest.raises(errors.UsageError) as caught:
        await wire.cls.create_async("some-model", messages, **wire.call(server))
    assert str(caught.value).startswith(f"{wire.cls.__name__}: ")
    assert server.requests == []


# -- g4f compatibility of the base classes ---------------------------------------


class SyncEcho(AbstractProvider):
    """A g4f-style synchronous provider."""

    @classmethod
    def create_completion(cls, model, messages, stream, **kwargs):
        yield from (model, messages[-1]["content"], str(sorted(kwargs)))


class AsyncEcho(AsyncGeneratorProvider):
    """A g4f-style async provider: only the async generator is written."""

    seen: dict = {}

    @classmethod
    async def create_async_generator(cls, model, messages, proxy=None, **kwargs):
        cls.seen = dict(kwargs, proxy=proxy)
        for part in ("x", "y"):
            yield part


async def test_sync_provider_gets_create_async_for_free():
    assert await SyncEcho.create_async("m", MESSAGES, temperature=1) == "mhi['temperature']"


@pytest.mark.parametrize("stream, expected", [(True, ["x", "y"]), (False, ["xy"])])
def test_async_provider_gets_create_completion_without_stream_leaking(stream, expected):
    chunks = AsyncEcho.create_completion("m", MESSAGES, stream=stream, temperature=1)
    assert list(chunks) == expected
    assert AsyncEcho.seen == {"temperature": 1, "proxy": None}  # the original leaked stream=


async def test_async_provider_gets_create_async():
    assert await AsyncEcho.create_async("m", MESSAGES) == "xy"


def test_unimplemented_entry_points_say_which_provider():
    with pytest.raises(NotImplementedError, match="AbstractProvider"):
        AbstractProvider.create_completion("m", MESSAGES)


FLAG_NAMES = ("working", "needs_auth", "supports_stream", "supports_gpt_35_turbo",
              "supports_gpt_4", "supports_message_history")


def test_flags_default_to_false():
    assert all(getattr(AbstractProvider, flag) is False for flag in FLAG_NAMES)
    assert AbstractProvider.url is None and AbstractProvider.model is None
    assert AsyncGeneratorProvider.supports_stream is True  # as in g4f


# Every async generator provider streams (g4f's AsyncGeneratorProvider sets it).
FLAGS = {
    Cromicle: dict(url="https://cromicle.top", supports_gpt_35_turbo=True),
    OpenAssistant: dict(url="https://open-assistant.io/chat", needs_auth=True,
                        model="OA_SFT_Llama_30B_6"),
    Vitalentum: dict(url="https://app.vitalentum.io", supports_gpt_35_turbo=True),
    Lockchat: dict(url="http://supertest.lockchat.app", supports_gpt_35_turbo=True,
                   supports_gpt_4=True),
}


@pytest.mark.parametrize("cls", list(FLAGS), ids=lambda c: c.__name__)
def test_class_flags_match_the_protocol_notes(cls):
    expected = {flag: False for flag in FLAG_NAMES}
    expected.update(supports_stream=True, **FLAGS[cls])
    actual = {name: getattr(cls, name) for name in expected}
    assert actual == expected
