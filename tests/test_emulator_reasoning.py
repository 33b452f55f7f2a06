"""Reasoning ("thinking") before the answer, in each protocol's own wire form,
asked for by a ``reasoning=N`` directive or by the request itself; raw
aiohttp reads compared as whole event lists."""

from __future__ import annotations

import pytest

from ipychat.emulator.reply import reasoning_pieces, reasoning_text, reply_text, split_pieces
from tests.test_emulator_kit import MODELS, emu, fetch, post, send, server, user  # noqa: F401
from tests.test_emulator_shapes import (anthropic_stream, ask_anthropic, ask_ollama,
                                        ask_openai, ollama_stream, openai_stream, words)

FILLER2 = ["tok ", "tok "]


def test_reasoning_text_is_a_fixed_cycle_of_words():
    assert reasoning_text(12) == "Let me think about this request step by step before I answer."
    assert reasoning_text(14) == reasoning_text(12) + " Let me"
    assert reasoning_text(0) == "" and reasoning_pieces(0) == []
    assert reasoning_pieces(3) == ["Let ", "me ", "think"]
    for n in (1, 12, 30):  # one piece per word, and the pieces make the text
        assert len(reasoning_pieces(n)) == n
        assert "".join(reasoning_pieces(n)) == reasoning_text(n)


# -- OpenAI-compatible -------------------------------------------------------------


@pytest.mark.parametrize("form, key", [("", "reasoning_content"),
                                       ("think_form=reasoning_content", "reasoning_content"),
                                       ("think_form=reasoning", "reasoning")])
async def test_openai_reasoning_field(emu, form, key):
    raw = await ask_openai(emu.url, f"hi [[emulator reasoning=3 chunks=2 {form}]]")
    events = raw.strict_sse()
    first = events[0][1]
    assert events == openai_stream(first, reasoning_pieces(3), FILLER2, key=key)


async def test_openai_reasoning_as_think_tags(emu):
    raw = await ask_openai(emu.url, "hi [[emulator reasoning=3 chunks=2 think_form=tags]]")
    events = raw.strict_sse()
    contents = ["<think>", "Let ", "me ", "think", "</think>\n\n", "tok ", "tok "]
    assert events == openai_stream(events[0][1], answer=contents)


async def test_openai_split_tags_cut_inside_both_tags(emu):
    text = "hi [[emulator reasoning=3 chunks=2 think_form=tags split_tags]]"
    events = (await ask_openai(emu.url, text)).strict_sse()
    contents = ["<th", "ink>Let ", "me ", "think</th", "ink>\n\n", "tok ", "tok "]
    assert events == openai_stream(events[0][1], answer=contents)
    one = (await ask_openai(emu.url, text.replace("=3", "=1"))).strict_sse()
    assert one == openai_stream(one[0][1], answer=["<th", "ink>Let</th", "ink>\n\n",
                                                   *FILLER2])


async def test_openai_reasoning_before_the_real_answer(emu):
    text = "hi [[emulator reasoning=2]]"
    events = (await ask_openai(emu.url, text)).strict_sse()
    answer = split_pieces(reply_text("openai", user(text), MODELS["openai"]))
    assert events == openai_stream(events[0][1], reasoning_pieces(2), answer)


@pytest.mark.parametrize("effort, directive, count", [
    ("low", "", 12), ("medium", "", 12), ("high", "", 12), ("xhigh", "", 12),
    ("none", "", 0), ("minimal", "", 0), (None, "", 0),
    ("none", "reasoning=2", 2), ("high", "reasoning=0", 0), ("high", "reasoning=4", 4)])
async def test_openai_reasoning_effort_asks_for_reasoning(emu, effort, directive, count):
    fields = {} if effort is None else {"reasoning_effort": effort}
    raw = await ask_openai(emu.url, f"hi [[emulator chunks=2 {directive}]]", **fields)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], reasoning_pieces(count), FILLER2)


@pytest.mark.parametrize("protocol", ["lockchat", "vitalentum"])
async def test_classic_openai_shapes_have_no_reasoning(emu, protocol):
    text = "hi [[emulator reasoning=3 chunks=2]]"
    if protocol == "lockchat":
        raw = await ask_openai(emu.url, text, lockchat=True, reasoning_effort="high")
    else:
        raw = await send("vitalentum", emu.url, text)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=FILLER2)


# -- Anthropic ---------------------------------------------------------------------


async def test_anthropic_thinking_block_then_text_block(emu):
    text = "hi [[emulator reasoning=3 chunks=2]]"
    events = (await ask_anthropic(emu.url, text)).strict_sse()
    first = events[0][1]["message"]
    assert events == anthropic_stream(first, words(text), reasoning_pieces(3), FILLER2)


THINKING_ON = {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("thinking, directive, count", [
    (THINKING_ON, "", 12), ({"type": "adaptive"}, "", 12), ({"type": "disabled"}, "", 0),
    (None, "", 0), ({"type": "disabled"}, "reasoning=2", 2), (THINKING_ON, "reasoning=0", 0)])
async def test_anthropic_thinking_request(emu, thinking, directive, count):
    text = f"hi [[emulator chunks=2 {directive}]]"
    fields = {} if thinking is None else {"thinking": thinking}
    events = (await ask_anthropic(emu.url, text, **fields)).strict_sse()
    first = events[0][1]["message"]
    assert events == anthropic_stream(first, words(text), reasoning_pieces(count), FILLER2)


@pytest.mark.parametrize("thinking, max_tokens, words_in_error", [
    ({"type": "enabled", "budget_tokens": 100}, 8192, "budget_tokens"),
    ({"type": "enabled"}, 8192, "budget_tokens"),
    ({"type": "enabled", "budget_tokens": 2048}, 2048, "max_tokens"),
    ({"type": "sometimes"}, 8192, "thinking"),
    ("yes", 8192, "thinking")])
async def test_anthropic_rejects_bad_thinking(emu, thinking, max_tokens, words_in_error):
    raw = await ask_anthropic(emu.url, "hi", thinking=thinking, max_tokens=max_tokens)
    assert raw.status == 400
    error = raw.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert words_in_error in error["error"]["message"]


# -- Ollama ------------------------------------------------------------------------


async def test_ollama_thinking_lines_before_the_content(emu):
    text = "hi [[emulator reasoning=3 chunks=2]]"
    raw = await ask_ollama(emu.url, text)
    assert raw.lines() == ollama_stream(words(text), reasoning_pieces(3), FILLER2)


@pytest.mark.parametrize("think, directive, count", [
    (True, "", 12), ("low", "", 12), ("medium", "", 12), ("high", "", 12), (False, "", 0),
    (None, "", 0), (False, "reasoning=2", 2), (True, "reasoning=0", 0)])
async def test_ollama_think_request(emu, think, directive, count):
    text = f"hi [[emulator chunks=2 {directive}]]"
    fields = {} if think is None else {"think": think}
    raw = await ask_ollama(emu.url, text, **fields)
    assert raw.lines() == ollama_stream(words(text), reasoning_pieces(count), FILLER2)


@pytest.mark.parametrize("think", ["extreme", 3, {"level": "high"}])
async def test_ollama_rejects_a_bad_think_value(emu, think):
    raw = await ask_ollama(emu.url, "hi", think=think)
    assert raw.status == 400 and "think" in raw.json()["error"]


# -- directives --------------------------------------------------------------------


@pytest.mark.parametrize("directive, key", [("reasoning=-1", "reasoning"),
                                            ("reasoning=many", "reasoning"),
                                            ("think_form=xml", "think_form"),
                                            ("finish=", "finish")])
async def test_bad_new_directives_are_rejected(emu, directive, key):
    raw = await ask_openai(emu.url, f"hi [[emulator {directive}]]")
    assert raw.status == 400
    assert f"fault {key}=" in raw.json()["error"]["message"]


async def test_queued_reasoning_applies_to_the_next_request(emu):
    await post(emu.url + "/_emulator/faults", {"reasoning": 2, "chunks": 2,
                                               "think_form": "reasoning"})
    events = (await ask_openai(emu.url, "hi")).strict_sse()
    assert events == openai_stream(events[0][1], reasoning_pieces(2), FILLER2, key="reasoning")
    assert emu.requests[-1].faults == {"reasoning": 2, "chunks": 2, "think_form": "reasoning"}
    assert (await fetch("GET", emu.url + "/_emulator/faults")).json() == {"queued": []}
