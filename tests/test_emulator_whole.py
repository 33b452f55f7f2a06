"""Whole (non-streamed) answers with reasoning, usage and finish reasons, for
``stream: false`` and for the ``whole`` directive on a streaming request; and
OpenAssistant's event stream checked as strict SSE."""

from __future__ import annotations

import pytest

from ipychat.emulator.reply import reasoning_text, reply_text
from tests.test_emulator_kit import MODELS, emu, send, server, texts, user  # noqa: F401
from tests.test_emulator_shapes import (CREATED, anthropic_message, ask_anthropic, ask_ollama,
                                        ask_openai, ollama_final, openai_usage, signature,
                                        words)

JSON = "application/json"


def openai_whole(reply: dict, message: dict, finish: str, usage: dict) -> dict:
    return {"id": reply["id"], "object": "chat.completion", "created": CREATED,
            "model": reply["model"], "system_fingerprint": "fp_emulator",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                         "message": {"role": "assistant", "refusal": None, **message}}],
            "usage": usage}


@pytest.mark.parametrize("form, message", [
    ("", {"content": "tok tok ", "reasoning_content": "Let me"}),
    ("think_form=reasoning", {"content": "tok tok ", "reasoning": "Let me"}),
    ("think_form=tags", {"content": "<think>Let me</think>\n\ntok tok "}),
    ("think_form=tags split_tags", {"content": "<think>Let me</think>\n\ntok tok "})])
async def test_openai_whole_directive_on_a_stream(emu, form, message):
    text = f"hi [[emulator whole reasoning=2 chunks=2 {form}]]"
    raw = await ask_openai(emu.url, text)
    assert (raw.status, raw.headers["Content-Type"]) == (200, JSON)
    reasoning = 4 if "tags" in form else 2  # the tags are pieces of their own
    usage = openai_usage(words(text), reasoning + 2, reasoning)
    assert raw.json() == openai_whole(raw.json(), message, "stop", usage)


async def test_openai_whole_with_a_limit_and_forced_finish(emu):
    text = "hi [[emulator whole reasoning=2 chunks=5]]"
    raw = await ask_openai(emu.url, text, max_tokens=3)
    message = {"content": "tok ", "reasoning_content": "Let me"}
    assert raw.json() == openai_whole(raw.json(), message, "length",
                                      openai_usage(words(text), 3, 2))
    text = "hi [[emulator whole chunks=2 finish=content_filter]]"
    raw = await ask_openai(emu.url, text)
    assert raw.json() == openai_whole(raw.json(), {"content": "tok tok "}, "content_filter",
                                      openai_usage(words(text), 2))


async def test_openai_not_streamed_with_reasoning_effort(emu):
    text = "hi [[emulator chunks=2]]"
    raw = await ask_openai(emu.url, text, stream=False, reasoning_effort="high")
    message = {"content": "tok tok ", "reasoning_content": reasoning_text(12)}
    assert raw.json() == openai_whole(raw.json(), message, "stop",
                                      openai_usage(words(text), 14, 12))


async def test_openai_not_streamed_plain_usage_counts_pieces(emu):
    text = "hi [[emulator chunks=3]]"
    raw = await ask_openai(emu.url, text, stream=False)
    assert raw.json()["usage"] == openai_usage(words(text), 3)
    assert "reasoning_content" not in raw.json()["choices"][0]["message"]


async def test_anthropic_whole_directive_on_a_stream(emu):
    text = "hi [[emulator whole reasoning=2 chunks=2]]"
    raw = await ask_anthropic(emu.url, text)
    assert (raw.status, raw.headers["Content-Type"]) == (200, JSON)
    content = [{"type": "thinking", "thinking": "Let me", "signature": signature("Let me")},
               {"type": "text", "text": "tok tok "}]
    assert raw.json() == anthropic_message(raw.json(), content, "end_turn", words(text), 4)


async def test_anthropic_whole_cut_inside_thinking_and_forced(emu):
    text = "hi [[emulator whole reasoning=3 chunks=2]]"
    raw = await ask_anthropic(emu.url, text, max_tokens=2)
    thinking = "Let me "  # the first two of three pieces
    content = [{"type": "thinking", "thinking": thinking, "signature": signature(thinking)}]
    assert raw.json() == anthropic_message(raw.json(), content, "max_tokens", words(text), 2)
    text = "hi [[emulator chunks=2 finish=refusal]]"
    raw = await ask_anthropic(emu.url, text, stream=False)
    assert raw.json() == anthropic_message(raw.json(), [{"type": "text", "text": "tok tok "}],
                                           "refusal", words(text), 2)


async def test_ollama_whole_directive_on_a_stream(emu):
    text = "hi [[emulator whole reasoning=2 chunks=2]]"
    raw = await ask_ollama(emu.url, text)  # Ollama streams unless told otherwise
    assert (raw.status, raw.headers["Content-Type"]) == (200, JSON)
    assert raw.json() == ollama_final(words(text), 4, content="tok tok ", thinking="Let me")


async def test_ollama_whole_with_think_and_a_limit(emu):
    text = "hi [[emulator chunks=5]]"
    raw = await ask_ollama(emu.url, text, stream=False, think="high",
                           options={"num_predict": 13})
    assert raw.json() == ollama_final(words(text), 13, "length", content="tok ",
                                      thinking=reasoning_text(12))


async def test_whole_changes_nothing_without_a_json_answer(emu):
    raw = await send("cromicle", emu.url, "hi [[emulator chunks=2 whole]]")
    assert (raw.headers["Content-Type"], raw.body) == ("text/plain; charset=utf-8", b"tok tok ")
    raw = await send("openassistant", emu.url, "hi [[emulator chunks=2 whole]]")
    assert raw.headers["Content-Type"] == "text/event-stream"
    assert texts("openassistant", raw) == ["tok ", "tok "]


async def test_openassistant_events_are_strict_sse(emu):
    for text in ("hi", "hi [[emulator unknown_event]]", "hi [[emulator split_utf8]]",
                 "hi [[emulator error_event after=2]]"):
        raw = await send("openassistant", emu.url, text)
        assert raw.headers["Content-Type"] == "text/event-stream"
        events = raw.strict_sse()  # asserts the framing
        assert {name for name, _ in events} == {None}
        assert all(isinstance(data, dict) and "event_type" in data for _, data in events)
    events = [data for _, data in (await send("openassistant", emu.url, "hi")).strict_sse()]
    tokens = "".join(e["text"] for e in events if e["event_type"] == "token")
    assert tokens == reply_text("openassistant", user("hi"), MODELS["openassistant"])
    assert events[-1]["message"]["content"] == tokens
