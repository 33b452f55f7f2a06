"""Events from each protocol, against recording servers on 127.0.0.1: the
exact request fields for --max-tokens, --reasoning and usage, and the
reasoning, usage and finish events read from the wire however it is split."""

import json

import pytest

from ipychat import errors
from ipychat.events import Finish, Usage
from ipychat.providers import Anthropic, Cromicle, Lockchat, Ollama, OpenAIChat, Vitalentum
from ipychat.providers import openai as openai_module
from tests.support.calls import events_of, merged
from tests.test_provider_base import json_reply, split_cases, streaming

MESSAGES = [{"role": "user", "content": "why?"}]
KEY = "sk-events-Very-Secret-0123456789"


def sse(value) -> bytes:
    return b"data: " + json.dumps(value, ensure_ascii=False).encode() + b"\n\n"


def delta(**fields) -> bytes:
    return sse({"choices": [{"index": 0, "delta": fields, "finish_reason": None}]})


def done(reason) -> bytes:
    return sse({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})


USAGE = sse({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7,
                                      "total_tokens": 18}})
DONE = b"data: [DONE]\n\n"


def openai_server(make_server, reply, path="/v1/chat/completions"):
    pieces = reply if isinstance(reply, list) else [reply]
    return make_server([("POST", path, streaming(pieces))])


# -- OpenAI-compatible ----------------------------------------------------------------

REASONING_FIELDS = {
    "reasoning_content": b"".join([delta(role="assistant", content=""),
                                   delta(reasoning_content="Let me "),
                                   delta(reasoning_content="think."), delta(content="Because."),
                                   done("stop"), USAGE, DONE]),
    "reasoning": b"".join([delta(reasoning="Let me "), delta(reasoning="think."),
                           delta(content="Because."), done("stop"), USAGE, DONE]),
    "think_tags": b"".join([delta(content="<think>"), delta(content="Let me "),
                            delta(content="think.</think>"), delta(content="\n\nBecause."),
                            done("stop"), USAGE, DONE]),
}
EXPECTED = [("reasoning", "Let me think."), ("text", "Because."),
            ("finish", Finish("stop", "stop")), ("usage", Usage(11, 7))]


@pytest.mark.parametrize("form", REASONING_FIELDS)
async def test_openai_reasoning_in_every_form_and_split(make_server, form):
    for case, pieces in split_cases(REASONING_FIELDS[form]).items():
        server = openai_server(make_server, pieces)
        events, err = await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
        assert err is None, (case, err)
        assert merged(events) == EXPECTED, case


async def test_openai_request_asks_for_usage_limits_and_effort(make_server):
    server = openai_server(make_server, REASONING_FIELDS["reasoning_content"])
    await events_of(OpenAIChat, server.url + "/v1", MESSAGES, max_tokens=5, reasoning="high",
                    top_p=0.5)
    assert server.requests[0].json() == {
        "model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 5,
        "reasoning_effort": "high", "top_p": 0.5, "stream": True,
        "stream_options": {"include_usage": True}}


async def test_openai_itself_gets_the_new_token_limit_field(make_server, monkeypatch):
    server = openai_server(make_server, REASONING_FIELDS["reasoning_content"])
    monkeypatch.setattr(OpenAIChat, "url", server.url + "/v1")  # OpenAI's own service
    monkeypatch.setattr(OpenAIChat, "default_base_url", server.url + "/v1")
    await events_of(OpenAIChat, None, MESSAGES, max_tokens=5, reasoning="off")
    body = server.requests[0].json()
    assert body["max_completion_tokens"] == 5 and "max_tokens" not in body
    assert body["reasoning_effort"] == "none"


async def test_a_token_limit_stop_is_a_length_finish(make_server):
    reply = delta(content="Once upon") + done("length") + DONE
    server = openai_server(make_server, reply)
    events, err = await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
    assert err is None and merged(events)[-1] == ("finish", Finish("length", "length"))


async def test_stream_options_refused_is_sent_again_without_and_remembered(make_server):
    calls = []

    async def handler(request, rec):
        body = json.loads(rec.body)
        calls.append(body)
        if "stream_options" in body:
            return await json_reply({"error": {
                "message": "Unrecognized request argument supplied: stream_options"}},
                status=400)(request, rec)
        return await streaming([delta(content="ok") + done("stop") + DONE])(request, rec)

    server = make_server([("POST", "/v1/chat/completions", handler)])
    base = server.url + "/v1"
    try:
        for _ in range(2):
            events, err = await events_of(OpenAIChat, base, MESSAGES)
            assert err is None and merged(events)[0] == ("text", "ok")
        assert ["stream_options" in body for body in calls] == [True, False, False]
    finally:
        openai_module._NO_STREAM_OPTIONS.discard(base)


async def test_another_400_is_not_retried(make_server):
    server = make_server([("POST", "/v1/chat/completions",
                           json_reply({"error": {"message": "bad temperature"}}, status=400))])
    _, err = await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
    assert isinstance(err, errors.HTTPStatusError) and len(server.requests) == 1


async def test_a_whole_json_answer_to_a_stream_request_is_shown(make_server):
    whole = {"id": "x", "object": "chat.completion", "choices": [{
        "index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "All at once.",
                    "reasoning_content": "Hm."}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    server = make_server([("POST", "/v1/chat/completions", json_reply(whole))])
    events, err = await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
    assert err is None
    assert merged(events) == [("reasoning", "Hm."), ("text", "All at once."),
                              ("finish", Finish("length", "length")), ("usage", Usage(3, 4))]


async def test_a_stream_without_usage_leaves_usage_unknown(make_server):
    server = openai_server(make_server, delta(content="hi") + done("stop") + DONE)
    events, _ = await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
    assert [kind for kind, _ in merged(events)] == ["text", "finish"]


async def test_text_only_surface_never_carries_reasoning(make_server):
    server = openai_server(make_server, REASONING_FIELDS["think_tags"])
    pieces = [p async for p in OpenAIChat.create_async_generator(
        None, MESSAGES, base_url=server.url + "/v1")]
    assert "".join(pieces) == "Because."


# -- classic OpenAI-style ---------------------------------------------------------------

@pytest.mark.parametrize("cls, path", [(Lockchat, "/v1/chat/completions"),
                                       (Vitalentum, "/api/converse-edge")])
async def test_classic_chunks_carry_a_finish_and_take_a_token_limit(make_server, cls, path):
    server = openai_server(make_server, delta(content="Hi") + done("length") + DONE, path)
    events, err = await events_of(cls, server.url, MESSAGES, max_tokens=9)
    assert err is None and merged(events) == [("text", "Hi"), ("finish", Finish("length",
                                                                               "length"))]
    assert server.requests[0].json()["max_tokens"] == 9


@pytest.mark.parametrize("cls, kwargs, words", [
    (Cromicle, {"max_tokens": 9}, "no token limit"),
    (Cromicle, {"reasoning": "low"}, "cannot be asked to reason"),
    (Lockchat, {"reasoning": "low"}, "cannot be asked to reason"),
    (OpenAIChat, {"reasoning": "max"}, "reasoning must be one of"),
    (OpenAIChat, {"max_tokens": 0}, "max_tokens must be a whole number"),
    (Anthropic, {"max_tokens": 1000, "reasoning": "low", "api_key": KEY}, "more than 1024"),
])
async def test_options_a_protocol_cannot_take_fail_before_sending(make_server, cls, kwargs,
                                                                  words):
    server = openai_server(make_server, DONE)
    _, err = await events_of(cls, server.url, MESSAGES, **kwargs)
    assert isinstance(err, errors.UsageError) and words in str(err)
    assert server.requests == []


# -- Anthropic ----------------------------------------------------------------------------

def named(event: str, value) -> bytes:
    return f"event: {event}\n".encode() + sse(value)


ANTHROPIC = b"".join([
    named("message_start", {"type": "message_start", "message": {
        "id": "m", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    named("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "thinking", "thinking": ""}}),
    named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
    named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "thinking_delta", "thinking": "think."}}),
    named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "signature_delta", "signature": "c2ln"}}),
    named("content_block_stop", {"type": "content_block_stop", "index": 0}),
    named("content_block_delta", {"type": "content_block_delta", "index": 1,
                                  "delta": {"type": "text_delta", "text": "Because."}}),
    named("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                            "usage": {"output_tokens": 7}}),
    named("message_stop", {"type": "message_stop"}),
])


async def test_anthropic_thinking_usage_and_stop_reason(make_server):
    for case, pieces in split_cases(ANTHROPIC).items():
        server = make_server([("POST", "/v1/messages", streaming(pieces))])
        events, err = await events_of(Anthropic, server.url, MESSAGES, api_key=KEY)
        assert err is None, (case, err)
        assert merged(events) == [("usage", Usage(12, 1)), ("reasoning", "Let me think."),
                                  ("text", "Because."), ("usage", Usage(None, 7)),
                                  ("finish", Finish("length", "max_tokens"))], case


@pytest.mark.parametrize("kwargs, fields", [
    ({}, {"max_tokens": 8192}),
    ({"max_tokens": 100}, {"max_tokens": 100}),
    ({"reasoning": "low"}, {"max_tokens": 2048 + 8192,
                            "thinking": {"type": "enabled", "budget_tokens": 2048}}),
    ({"reasoning": "high", "max_tokens": 5000},
     {"max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 2500}}),
    ({"reasoning": "off"}, {"max_tokens": 8192}),
])
async def test_anthropic_limits_and_thinking_budget(make_server, kwargs, fields):
    server = make_server([("POST", "/v1/messages", streaming([ANTHROPIC]))])
    await events_of(Anthropic, server.url, MESSAGES, api_key=KEY, **kwargs)
    body = server.requests[0].json()
    assert {k: body[k] for k in ("max_tokens", "thinking") if k in body} == fields
    if "thinking" in body:
        assert body["thinking"]["budget_tokens"] < body["max_tokens"]


async def test_anthropic_whole_json_answer(make_server):
    whole = {"type": "message", "content": [{"type": "thinking", "thinking": "Hm."},
                                            {"type": "text", "text": "All at once."}],
             "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 4}}
    server = make_server([("POST", "/v1/messages", json_reply(whole))])
    events, err = await events_of(Anthropic, server.url, MESSAGES, api_key=KEY)
    assert err is None
    assert merged(events) == [("reasoning", "Hm."), ("text", "All at once."),
                              ("usage", Usage(3, 4)), ("finish", Finish("stop", "end_turn"))]


# -- Ollama ---------------------------------------------------------------------------------

def line(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


OLLAMA = b"".join([
    line({"message": {"role": "assistant", "content": "", "thinking": "Let me "}, "done": False}),
    line({"message": {"role": "assistant", "content": "", "thinking": "think."}, "done": False}),
    line({"message": {"role": "assistant", "content": "Because."}, "done": False}),
    line({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "length",
          "prompt_eval_count": 12, "eval_count": 7}),
])


async def test_ollama_thinking_counts_and_done_reason(make_server):
    for case, pieces in split_cases(OLLAMA).items():
        server = make_server([("POST", "/api/chat", streaming(
            pieces, content_type="application/x-ndjson"))])
        events, err = await events_of(Ollama, server.url, MESSAGES)
        assert err is None, (case, err)
        assert merged(events) == [("reasoning", "Let me think."), ("text", "Because."),
                                  ("usage", Usage(12, 7)), ("finish", Finish("length",
                                                                             "length"))], case


@pytest.mark.parametrize("model, kwargs, fields", [
    ("qwen3", {"reasoning": "high", "max_tokens": 64},
     {"think": True, "options": {"num_predict": 64}}),
    ("gpt-oss:20b", {"reasoning": "low"}, {"think": "low", "options": {}}),
    ("qwen3", {"reasoning": "off"}, {"think": False, "options": {}}),
    ("qwen3", {}, {"options": {}}),
])
async def test_ollama_think_and_num_predict(make_server, model, kwargs, fields):
    server = make_server([("POST", "/api/chat", streaming([OLLAMA]))])
    await events_of(Ollama, server.url, MESSAGES, model=model, **kwargs)
    body = server.requests[0].json()
    assert {k: body[k] for k in ("think", "options") if k in body} == fields


async def test_ollama_whole_json_answer(make_server):
    whole = {"message": {"role": "assistant", "content": "All at once.", "thinking": "Hm."},
             "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 4}
    server = make_server([("POST", "/api/chat", json_reply(whole))])
    events, err = await events_of(Ollama, server.url, MESSAGES)
    assert err is None
    assert merged(events) == [("reasoning", "Hm."), ("text", "All at once."),
                              ("usage", Usage(3, 4)), ("finish", Finish("stop", "stop"))]
