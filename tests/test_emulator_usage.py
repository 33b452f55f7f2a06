"""Usage, token limits and finish reasons, in each protocol's own wire form;
raw aiohttp reads compared as whole event lists."""

from __future__ import annotations

import json

import pytest

from ipychat.emulator import DEMO_COOKIES
from ipychat.emulator.reply import reasoning_pieces, reply_text, split_pieces
from tests.test_emulator_kit import (MODELS, emu, post, send, send_openassistant,  # noqa: F401
                                     server, user)
from tests.test_emulator_shapes import (anthropic_stream, ask_anthropic, ask_ollama,
                                        ask_openai, ollama_stream, openai_stream, openai_usage,
                                        words)

FILLER = "tok "


def tok(n: int) -> list:
    return [FILLER] * n


# -- usage -------------------------------------------------------------------------


@pytest.mark.parametrize("reasoning", [0, 2])
async def test_openai_usage_only_when_asked(emu, reasoning):
    text = f"hi [[emulator reasoning={reasoning} chunks=3]]"
    thought = reasoning_pieces(reasoning)
    raw = await ask_openai(emu.url, text, stream_options={"include_usage": True})
    events = raw.strict_sse()
    usage = openai_usage(words(text), reasoning + 3, reasoning or None)
    assert events == openai_stream(events[0][1], thought, tok(3), usage=usage)


@pytest.mark.parametrize("fields", [{}, {"stream_options": {"include_usage": False}},
                                    {"stream_options": {}}, {"stream_options": None}])
async def test_openai_without_include_usage_sends_no_usage(emu, fields):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=3]]", **fields)
    assert b'"usage"' not in raw.body
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=tok(3))


async def test_no_usage_leaves_usage_out_even_when_asked(emu):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=3 no_usage]]",
                           stream_options={"include_usage": True})
    assert b'"usage"' not in raw.body
    assert raw.strict_sse() == openai_stream(raw.strict_sse()[0][1], answer=tok(3))


async def test_reject_stream_options_is_an_old_servers_400(emu):
    text = "hi [[emulator chunks=3 reject_stream_options]]"
    raw = await ask_openai(emu.url, text, stream_options={"include_usage": True})
    assert (raw.status, raw.headers["Content-Type"]) == (400, "application/json")
    assert raw.json() == {"error": {
        "message": "Unrecognized request argument supplied: stream_options",
        "type": "invalid_request_error", "param": None, "code": None}}
    raw = await ask_openai(emu.url, text)  # the retry without stream_options is answered
    assert raw.status == 200
    assert raw.strict_sse() == openai_stream(raw.strict_sse()[0][1], answer=tok(3))


async def test_anthropic_usage_counts_system_and_pieces(emu):
    text = "hi [[emulator chunks=3 reasoning=2]]"
    raw = await ask_anthropic(emu.url, text, system="be very brief")
    events = raw.strict_sse()
    assert events == anthropic_stream(events[0][1]["message"], words("be very brief", text),
                                      reasoning_pieces(2), tok(3))
    assert events[-2][1]["usage"] == {"output_tokens": 5}


async def test_anthropic_default_client_limit_changes_nothing(emu):
    text = "hello"
    raw = await ask_anthropic(emu.url, text, max_tokens=8192)
    events = raw.strict_sse()
    answer = split_pieces(reply_text("anthropic", user(text), MODELS["anthropic"]))
    assert events == anthropic_stream(events[0][1]["message"], 1, answer=answer)


async def test_ollama_final_line_counts(emu):
    text = "hi [[emulator chunks=3]]"
    raw = await ask_ollama(emu.url, text, options={"temperature": 0})
    assert raw.lines() == ollama_stream(words(text), answer=tok(3))


# -- token limits ------------------------------------------------------------------


@pytest.mark.parametrize("fields, sent, reason", [
    ({"max_tokens": 3}, 3, "length"), ({"max_completion_tokens": 2}, 2, "length"),
    ({"max_tokens": 4, "max_completion_tokens": 2}, 2, "length"),
    ({"max_tokens": 5}, 5, "stop"), ({"max_tokens": 4096}, 5, "stop"),
    ({"max_tokens": None}, 5, "stop")])
async def test_openai_token_limit_cuts_with_length(emu, fields, sent, reason):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=5]]", **fields)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=tok(sent), finish=reason)


async def test_openai_limit_counts_reasoning_first(emu):
    text = "hi [[emulator reasoning=3 chunks=5]]"
    raw = await ask_openai(emu.url, text, max_tokens=2, stream_options={"include_usage": True})
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], reasoning_pieces(3)[:2], [], finish="length",
                                   usage=openai_usage(words(text), 2, 2))
    raw = await ask_openai(emu.url, text, max_tokens=4)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], reasoning_pieces(3), tok(1), finish="length")


async def test_no_limit_ignores_the_requests_limit(emu):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=5 no_limit]]", max_tokens=2)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=tok(5))


@pytest.mark.parametrize("value", ["3", 0, -1, True, 2.5])
async def test_openai_rejects_a_bad_limit(emu, value):
    raw = await ask_openai(emu.url, "hi", max_tokens=value)
    assert raw.status == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in raw.json()["error"]["message"]


async def test_lockchat_and_vitalentum_limits(emu):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=5]]", lockchat=True, max_tokens=2)
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=tok(2), finish="length")
    history = json.dumps({"history": [{"speaker": "human", "text": "hi [[emulator chunks=5]]"}]})
    raw = await post(emu.url + "/api/converse-edge", {"conversation": history, "max_tokens": 2})
    events = raw.strict_sse()
    assert events == openai_stream(events[0][1], answer=tok(2), finish="length")


@pytest.mark.parametrize("max_tokens, sent, reason", [(3, 3, "max_tokens"), (5, 5, "end_turn")])
async def test_anthropic_token_limit(emu, max_tokens, sent, reason):
    text = "hi [[emulator chunks=5]]"
    raw = await ask_anthropic(emu.url, text, max_tokens=max_tokens)
    events = raw.strict_sse()
    assert events == anthropic_stream(events[0][1]["message"], words(text), answer=tok(sent),
                                      stop=reason)


async def test_anthropic_limit_inside_thinking_has_no_text_block(emu):
    text = "hi [[emulator reasoning=4 chunks=5]]"
    raw = await ask_anthropic(emu.url, text, max_tokens=2)
    events = raw.strict_sse()
    assert events == anthropic_stream(events[0][1]["message"], words(text),
                                      reasoning_pieces(4)[:2], stop="max_tokens",
                                      text_block=False)


@pytest.mark.parametrize("num_predict, sent, reason", [(2, 2, "length"), (-1, 5, "stop"),
                                                       (5, 5, "stop"), (0, 0, "length")])
async def test_ollama_num_predict(emu, num_predict, sent, reason):
    text = "hi [[emulator chunks=5]]"
    raw = await ask_ollama(emu.url, text, options={"num_predict": num_predict})
    assert raw.lines() == ollama_stream(words(text), answer=tok(sent), reason=reason)


async def test_ollama_rejects_a_bad_num_predict(emu):
    raw = await ask_ollama(emu.url, "hi", options={"num_predict": "many"})
    assert raw.status == 400 and "num_predict" in raw.json()["error"]


def oa_events(raw) -> list:
    assert raw.headers["Content-Type"] == "text/event-stream"
    return [data for _, data in raw.strict_sse()]


@pytest.mark.parametrize("sampling, sent", [({"max_new_tokens": 2}, 2),
                                            ({"max_new_tokens": 1024}, 5), ({}, 5)])
async def test_openassistant_max_new_tokens_cuts(emu, sampling, sent):
    raw = await send_openassistant(emu.url, "hi [[emulator chunks=5]]", "m", sampling)
    events = oa_events(raw)
    message_id = events[-1]["message"]["id"]
    assert events == [{"event_type": "pending", "queue_position": 0, "queue_size": 1},
                      *[{"event_type": "token", "text": FILLER}] * sent,
                      {"event_type": "message", "message": {
                          "id": message_id, "role": "assistant", "state": "complete",
                          "content": FILLER * sent}}]


async def test_openassistant_default_limit_keeps_the_whole_reply(emu):
    text = "a question"
    raw = await send_openassistant(emu.url, text, "m", {"max_new_tokens": 1024})
    tokens = [e["text"] for e in oa_events(raw) if e["event_type"] == "token"]
    assert "".join(tokens) == reply_text("openassistant", user(text), "m")


async def test_openassistant_rejects_a_bad_max_new_tokens(emu):
    chat = (await post(emu.url + "/api/chat", cookies=DEMO_COOKIES)).json()["id"]
    prompter = {"chat_id": chat, "content": "hi", "parent_id": None}
    parent = (await post(emu.url + "/api/chat/prompter_message", prompter,
                         cookies=DEMO_COOKIES)).json()["id"]
    assistant = {"chat_id": chat, "parent_id": parent, "model_config_name": "m",
                 "sampling_parameters": {"max_new_tokens": "lots"}, "plugins": []}
    raw = await post(emu.url + "/api/chat/assistant_message", assistant, cookies=DEMO_COOKIES)
    assert raw.status == 400 and "max_new_tokens" in raw.json()["message"]


# -- finish= -----------------------------------------------------------------------


async def test_finish_forces_the_reported_word(emu):
    raw = await ask_openai(emu.url, "hi [[emulator chunks=2 finish=content_filter]]")
    assert raw.strict_sse() == openai_stream(raw.strict_sse()[0][1], answer=tok(2),
                                             finish="content_filter")
    # Forced wins over a cut: the answer is cut, the word is the forced one.
    raw = await ask_openai(emu.url, "hi [[emulator chunks=5 finish=stop]]", max_tokens=2)
    assert raw.strict_sse() == openai_stream(raw.strict_sse()[0][1], answer=tok(2))
    text = "hi [[emulator chunks=2 finish=refusal]]"
    raw = await ask_anthropic(emu.url, text)
    assert raw.strict_sse() == anthropic_stream(raw.strict_sse()[0][1]["message"], words(text),
                                                answer=tok(2), stop="refusal")
    text = "hi [[emulator chunks=2 finish=load]]"
    raw = await ask_ollama(emu.url, text)
    assert raw.lines() == ollama_stream(words(text), answer=tok(2), reason="load")


@pytest.mark.parametrize("protocol", ["lockchat", "vitalentum"])
async def test_classic_openai_shapes_end_with_stop_or_forced(emu, protocol):
    for directive, reason in [("", "stop"), ("finish=length", "length")]:
        raw = await send(protocol, emu.url, f"hi [[emulator chunks=2 {directive}]]")
        events = raw.strict_sse()
        assert events == openai_stream(events[0][1], answer=tok(2), finish=reason)
