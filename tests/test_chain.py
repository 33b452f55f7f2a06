"""ProviderChain: fall back before the first text, never after it."""

import asyncio
import json
import socket

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import Anthropic, Ollama, OpenAIChat, ProviderChain
from tests.support.server import stream_pieces

MESSAGES = [{"role": "user", "content": "hi"}]
KEY = "sk-chain-Very-Secret-0123456789"
BOUND = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openai_chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode() + b"\n\n"


def openai_route(pieces):
    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type="text/event-stream")
    return [("POST", "/v1/chat/completions", handler)]


def failing_route(status, path="/v1/chat/completions"):
    async def handler(request, rec):
        return web.json_response({"error": {"message": "internal trouble"}}, status=status)
    return [("POST", path, handler)]


def anthropic_route(text: str):
    events = [
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = b"".join(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
                    for kind, data in events)

    async def handler(request, rec):
        return await stream_pieces(request, [body], content_type="text/event-stream")
    return [("POST", "/v1/messages", handler)]


async def collect(chain, model=None, **kwargs):
    return [event.text async for event in chain.stream(model, MESSAGES, **kwargs)
            if event.kind == "text"]


async def test_first_two_fail_differently_third_answers(make_server):
    broken = make_server(failing_route(500))
    good = make_server(anthropic_route("bonjour"))
    refused = f"http://127.0.0.1:{free_port()}"
    chain = ProviderChain([
        (Ollama, {"base_url": refused}),
        (OpenAIChat, {"base_url": broken.url + "/v1", "api_key": KEY}),
        (Anthropic, {"base_url": good.url, "api_key": KEY, "model": "claude-x"}),
    ])
    # One attempt each here; retries before moving on are in test_retries.py.
    assert await collect(chain, timeout=5, max_retries=0) == ["bonjour"]
    assert [r.json()["model"] for r in broken.requests] == ["gpt-4o-mini"]
    assert [r.json()["model"] for r in good.requests] == ["claude-x"]


async def test_all_fail_lists_each_failure_on_one_line(make_server):
    broken = make_server(failing_route(500))
    rejecting = make_server(failing_route(401, "/v1/messages"))
    chain = ProviderChain([
        (Ollama, {"base_url": f"http://127.0.0.1:{free_port()}"}),
        (OpenAIChat, {"base_url": broken.url + "/v1"}),
        (Anthropic, {"base_url": rejecting.url, "api_key": KEY}),
    ])
    with pytest.raises(errors.AllProvidersFailed) as caught:
        await collect(chain, max_retries=0)
    err = caught.value
    assert [(name, type(e)) for name, e in err.failures] == [
        ("Ollama", errors.ConnectionFailed),
        ("OpenAIChat", errors.HTTPStatusError),
        ("Anthropic", errors.AuthenticationRequired),
    ]
    text = str(err)
    assert "\n" not in text and KEY not in text
    assert "Ollama: cannot connect to 127.0.0.1:" in text
    assert "; OpenAIChat: HTTP 500: internal trouble; Anthropic: HTTP 401" in text
    assert "Ollama: Ollama:" not in text


async def test_never_switches_mid_answer(make_server):
    cut = make_server(openai_route([openai_chunk("half an ")]))  # no [DONE]
    spare = make_server(anthropic_route("other answer"))
    chain = ProviderChain([(OpenAIChat, {"base_url": cut.url + "/v1"}),
                           (Anthropic, {"base_url": spare.url, "api_key": KEY})])
    got = []
    with pytest.raises(errors.StreamCutShort):
        async for event in chain.stream(None, MESSAGES):
            got.append(event.text)
    assert got == ["half an "]
    assert spare.requests == []


async def test_empty_answer_falls_back(make_server):
    empty = make_server(openai_route([b"data: [DONE]\n\n"]))
    good = make_server(anthropic_route("something"))
    chain = ProviderChain([(OpenAIChat, {"base_url": empty.url + "/v1"}),
                           (Anthropic, {"base_url": good.url, "api_key": KEY})])
    assert await collect(chain) == ["something"]
    assert len(empty.requests) == 1


async def test_cancel_is_never_swallowed(make_server):
    async def hang(request, rec):
        return await stream_pieces(request, [b": waiting\n\n"],
                                   content_type="text/event-stream", hold=asyncio.Event())
    hanging = make_server([("POST", "/v1/chat/completions", hang)])
    spare = make_server(anthropic_route("too late"))
    chain = ProviderChain([(OpenAIChat, {"base_url": hanging.url + "/v1"}),
                           (Anthropic, {"base_url": spare.url, "api_key": KEY})])
    task = asyncio.ensure_future(collect(chain))
    assert await asyncio.to_thread(hanging.wait_for, lambda: hanging.requests, BOUND)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec = hanging.requests[0]
    assert await asyncio.to_thread(hanging.wait_for, lambda: rec.disconnected, BOUND)
    assert spare.requests == []


async def test_foreign_sync_class_in_a_chain():
    class SyncG4F:
        @classmethod
        def create_completion(cls, model, messages, stream, **kwargs):
            assert "base_url" not in kwargs
            yield f"{model}:"
            yield "ok"

    chain = ProviderChain([(Ollama, {"base_url": f"http://127.0.0.1:{free_port()}"}),
                           (SyncG4F, {})])
    assert await collect(chain, "m", base_url="http://127.0.0.1:1") == ["m:", "ok"]


def test_repr_shows_labels_not_keys():
    chain = ProviderChain([(OpenAIChat, {"api_key": KEY}), (Anthropic, {"api_key": KEY})])
    assert repr(chain) == "ProviderChain([OpenAIChat, Anthropic])"


def test_needs_providers():
    with pytest.raises(errors.UsageError):
        ProviderChain([])
    with pytest.raises(errors.UsageError, match="not a chat provider"):
        ProviderChain([(object, {})])
