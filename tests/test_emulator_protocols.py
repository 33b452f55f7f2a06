"""OpenAI, Ollama and Anthropic as the emulator speaks them, checked with raw
aiohttp requests: framing, non-streamed bodies, validation, non-streamed faults."""

from __future__ import annotations

import json

import aiohttp
import pytest

from ipychat.emulator.reply import answer_text, reply_text
from ipychat.emulator.faults import Faults
from tests.test_emulator_kit import (ANTHROPIC_HEADERS, USER_HI, emu, fetch,  # noqa: F401
                                     openai_texts, post, send, server, user)

TWO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


# -- OpenAI --------------------------------------------------------------------


async def test_openai_stream_framing(emu):
    raw = await post(emu.url + "/v1/chat/completions",
                     {"model": "gpt-4o", "messages": TWO, "stream": True})
    assert raw.headers["Content-Type"] == "text/event-stream"
    events = raw.sse()
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "stop"}
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert {(c["object"], c["model"]) for c in chunks} == {("chat.completion.chunk", "gpt-4o")}
    assert "".join(openai_texts(raw)) == reply_text("openai", TWO, "gpt-4o")
    assert len(openai_texts(raw)) > 20  # streamed about a word at a time


async def test_openai_whole_answer(emu):
    body = {"model": "emulator", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "from "}, {"type": "text", "text": "parts"}]}]}
    raw = await post(emu.url + "/v1/chat/completions", body)
    assert raw.headers["Content-Type"] == "application/json"
    reply = raw.json()
    assert reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert (choice["finish_reason"], choice["message"]["role"]) == ("stop", "assistant")
    assert choice["message"]["content"] == reply_text("openai", user("from parts"), "emulator")
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_openai_unknown_model_and_bad_requests(emu):
    url = emu.url + "/v1/chat/completions"
    raw = await post(url, {"model": "x", "messages": USER_HI})
    assert (raw.status, raw.json()) == (404, {"error": {
        "message": "The model `x` does not exist", "type": "invalid_request_error",
        "code": "model_not_found", "param": None}})
    for body in ({"messages": USER_HI}, {"model": "gpt-4", "messages": []},
                 {"model": "gpt-4", "messages": [{"role": "robot", "content": "x"}]},
                 {"model": "gpt-4", "messages": USER_HI, "stream": "yes"}):
        raw = await post(url, body)
        assert raw.status == 400
        assert raw.json()["error"]["type"] == "invalid_request_error"
    raw = await fetch("POST", url, data=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.status == 400


async def test_openai_models(emu):
    listed = (await fetch("GET", emu.url + "/v1/models")).json()
    assert listed["object"] == "list"
    ids = [m["id"] for m in listed["data"]]
    assert {"gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini", "emulator"} <= set(ids)
    assert (await fetch("GET", emu.url + "/v1/models/gpt-4o")).json()["id"] == "gpt-4o"
    assert (await fetch("GET", emu.url + "/v1/models/nope")).status == 404


async def test_no_answer_echoes_a_key(emu):
    secret = "sk-echo-check-123"
    headers = {"Authorization": f"Bearer {secret}", "x-api-key": secret,
               "anthropic-version": "2023-06-01"}
    for path, body in [("/v1/chat/completions", {"model": "gpt-4o", "messages": USER_HI}),
                       ("/v1/messages", {"model": "claude-3-5-haiku-latest", "max_tokens": 5,
                                         "messages": USER_HI}),
                       ("/v1/chat/completions", {"model": "nope", "messages": USER_HI})]:
        raw = await post(emu.url + path, body, headers=headers)
        assert secret.encode() not in raw.body
    listed = await fetch("GET", emu.url + "/_emulator/requests")
    assert secret.encode() not in listed.body


@pytest.mark.parametrize("protocol", ["openai", "ollama", "anthropic"])
async def test_whole_answer_faults(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator drop]]", stream=False)
    assert isinstance(raw.error, aiohttp.ClientPayloadError) and raw.status == 200
    raw = await send(protocol, emu.url, "hi [[emulator malformed]]", stream=False)
    assert raw.status == 200 and raw.error is None
    with pytest.raises(ValueError):
        json.loads(raw.body)
    raw = await send(protocol, emu.url, "hi [[emulator invalid_utf8]]", stream=False)
    assert raw.body.count(b"\xff\xfe") == 1
    raw = await send(protocol, emu.url, "hi [[emulator error_event]]", stream=False)
    assert raw.status == 500
    text = "hi [[emulator split_utf8]]"
    raw = await send(protocol, emu.url, text, stream=False)
    assert sum(not decodes(chunk) for chunk in raw.chunks) >= 4  # cut inside characters
    want = answer_text(protocol, user(text), raw.json()["model"], Faults(split_utf8=True))
    assert WHOLE_TEXT[protocol](raw.json()) == want


WHOLE_TEXT = {"openai": lambda r: r["choices"][0]["message"]["content"],
              "ollama": lambda r: r["message"]["content"],
              "anthropic": lambda r: r["content"][0]["text"]}


def decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- Ollama --------------------------------------------------------------------


async def test_ollama_stream_lines(emu):
    raw = await post(emu.url + "/ollama/api/chat",
                     {"model": "llama3.2", "messages": TWO, "options": {"temperature": 0}})
    assert raw.headers["Content-Type"] == "application/x-ndjson"
    lines = raw.lines()
    final = lines[-1]
    assert (final["done"], final["done_reason"], final["message"]["content"]) == (
        True, "stop", "")
    assert final["eval_count"] == len(lines) - 1 and final["prompt_eval_count"] == 3
    assert all(set(line) == {"model", "created_at", "message", "done"} and not line["done"]
               for line in lines[:-1])
    text = "".join(line["message"]["content"] for line in lines)
    assert text == reply_text("ollama", TWO, "llama3.2")


async def test_ollama_whole_answer_and_models(emu):
    raw = await post(emu.url + "/ollama/api/chat",
                     {"model": "emulator", "messages": USER_HI, "stream": False})
    reply = raw.json()
    assert (reply["done"], reply["done_reason"]) == (True, "stop")
    assert reply["message"] == {"role": "assistant",
                                "content": reply_text("ollama", USER_HI, "emulator")}
    names = [m["name"] for m in (await fetch("GET", emu.url + "/ollama/api/tags")).json()["models"]]
    assert {"llama3.2:latest", "emulator:latest"} <= set(names)
    assert (await fetch("GET", emu.url + "/ollama")).body == b"Ollama is running"


async def test_ollama_errors(emu):
    url = emu.url + "/ollama/api/chat"
    raw = await post(url, {"model": "x", "messages": USER_HI})
    assert (raw.status, raw.json()) == (404, {"error": 'model "x" not found, try pulling it first'})
    raw = await post(url, {"messages": USER_HI})
    assert (raw.status, raw.json()) == (400, {"error": "model is required"})
    loaded = (await post(url, {"model": "llama3.2"})).json()
    assert (loaded["done"], loaded["done_reason"]) == (True, "load")


# -- Anthropic -------------------------------------------------------------------


async def test_anthropic_checks_headers_and_body(emu):
    url = emu.url + "/v1/messages"
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 10, "messages": USER_HI}
    for headers in ({"anthropic-version": "2023-06-01"},
                    {"anthropic-version": "2023-06-01", "x-api-key": ""}):
        raw = await post(url, body, headers=headers)
        assert (raw.status, raw.json()) == (401, {"type": "error", "error": {
            "type": "authentication_error", "message": "invalid x-api-key"}})
    bad = [
        ({"x-api-key": "k"}, body, "anthropic-version"),
        (ANTHROPIC_HEADERS, {**body, "max_tokens": None}, "max_tokens"),
        (ANTHROPIC_HEADERS, {**body, "messages": TWO}, 'Unexpected role "system"'),
        (ANTHROPIC_HEADERS, {**body, "system": [{"type": "image"}]}, "system"),
    ]
    for headers, request_body, words in bad:
        raw = await post(url, request_body, headers=headers)
        assert raw.status == 400 and raw.json()["error"]["type"] == "invalid_request_error"
        assert words in raw.json()["error"]["message"]
    raw = await post(url, {**body, "model": "gpt-4"}, headers=ANTHROPIC_HEADERS)
    assert (raw.status, raw.json()["error"]["type"]) == (404, "not_found_error")


async def test_anthropic_stream_events(emu):
    # max_tokens cuts the answer (a piece a token): room for all of it.
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 1024, "stream": True,
            "system": [{"type": "text", "text": "be brief"}], "messages": user("hello")}
    raw = await post(emu.url + "/v1/messages", body, headers=ANTHROPIC_HEADERS)
    events = raw.sse()
    names = [name for name, _ in events]
    deltas = len(names) - 6
    assert names == ["message_start", "content_block_start", "ping",
                     *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for d, name in zip(data, names))
    assert data[0]["message"]["content"] == [] and data[0]["message"]["role"] == "assistant"
    assert data[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert data[-2]["usage"] == {"output_tokens": deltas}
    text = "".join(d["delta"]["text"] for d in data[3:3 + deltas])
    assert {d["delta"]["type"] for d in data[3:3 + deltas]} == {"text_delta"}
    assert text == reply_text("anthropic", TWO, "claude-3-5-haiku-latest")


async def test_anthropic_whole_message(emu):
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 1024, "system": "be brief",
            "messages": user("hello")}
    reply = (await post(emu.url + "/v1/messages", body, headers=ANTHROPIC_HEADERS)).json()
    assert (reply["type"], reply["role"], reply["stop_reason"]) == (
        "message", "assistant", "end_turn")
    assert reply["content"] == [{"type": "text", "text": reply_text(
        "anthropic", TWO, "claude-3-5-haiku-latest")}]
    assert set(reply["usage"]) == {"input_tokens", "output_tokens"}
