"""Tools on the wire, against recording servers on 127.0.0.1: the exact request
bytes each protocol gets (the tools offered, earlier calls and their results,
an error result), and the tool calls read back from streams split at every
byte, two calls in one turn, whole JSON answers. The classic four and
foreign g4f classes refuse tools before anything is sent."""

import json

import pytest

from ipychat import errors
from ipychat.events import Finish, Note, ToolCall, Usage, from_foreign
from ipychat.messages import folded
from ipychat.providers import (Anthropic, Cromicle, Lockchat, Ollama, OpenAIChat,
                               OpenAssistant, Vitalentum, stream_events)
from tests.support.calls import events_of, merged
from tests.test_provider_base import json_reply, split_cases, streaming

KEY = "sk-tools-Very-Secret-0123456789"
WEATHER = {"name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
CLOCK = {"name": "get_time", "description": "",
         "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}
TOOLS = [WEATHER, CLOCK]
#: A question, a turn that called two tools (one of which raised), the answer, and a follow-up.
HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_2", "name": "get_time", "arguments": '{"zone": "CET"}'}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
     "content": '{"temp": 21}', "is_error": False},
    {"role": "tool", "tool_call_id": "call_2", "name": "get_time",
     "content": "ValueError: no clock", "is_error": True},
    {"role": "assistant", "content": "21 degrees; the clock failed."},
    {"role": "user", "content": "And tomorrow?"},
]
CALLS = [("tool_call", ToolCall("call_1", "get_weather", '{"city": "Paris"}')),
         ("tool_call", ToolCall("call_2", "get_time", '{"zone": "CET"}'))]


def sse(value) -> bytes:
    return b"data: " + json.dumps(value, ensure_ascii=False).encode() + b"\n\n"


def exact(body: dict) -> bytes:
    """A JSON body as aiohttp's ``json=`` writes it."""
    return json.dumps(body).encode()


# -- OpenAI-compatible ----------------------------------------------------------------

def call_delta(index, **fields) -> bytes:
    piece = {"index": index, **fields}
    return sse({"choices": [{"index": 0, "delta": {"tool_calls": [piece]},
                             "finish_reason": None}]})


def arguments(index, text) -> bytes:
    return call_delta(index, function={"arguments": text})


OPENAI_CALLS = b"".join([
    sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": None},
                      "finish_reason": None}]}),
    call_delta(0, id="call_1", type="function",
               function={"name": "get_weather", "arguments": ""}),
    arguments(0, '{"ci'), arguments(0, 'ty": "Pa'), arguments(0, 'ris"}'),
    call_delta(1, id="call_2", type="function", function={"name": "get_time", "arguments": ""}),
    arguments(1, '{"zone":'), arguments(1, ' "CET"}'),
    sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    sse({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12}}),
    b"data: [DONE]\n\n",
])


async def test_openai_two_calls_with_arguments_split_anywhere(make_server):
    for case, pieces in split_cases(OPENAI_CALLS).items():
        server = make_server([("POST", "/v1/chat/completions", streaming(pieces))])
        events, err = await events_of(OpenAIChat, server.url + "/v1", HISTORY, tools=TOOLS)
        assert err is None, (case, err)
        assert merged(events) == [*CALLS, ("finish", Finish("tool_calls", "tool_calls")),
                                  ("usage", Usage(30, 12))], case


async def test_openai_request_carries_tools_calls_and_results(make_server):
    server = make_server([("POST", "/v1/chat/completions", streaming([OPENAI_CALLS]))])
    await events_of(OpenAIChat, server.url + "/v1", HISTORY, tools=TOOLS)
    assert server.requests[0].body == exact({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "Error: ValueError: no clock"},
            {"role": "assistant", "content": "21 degrees; the clock failed."},
            {"role": "user", "content": "And tomorrow?"}],
        "tools": [{"type": "function", "function": WEATHER},
                  {"type": "function", "function": CLOCK}],
        "stream": True, "stream_options": {"include_usage": True}})


@pytest.mark.parametrize("pieces, expected", [
    # No index: a new id starts a call, pieces without one continue the last.
    ([{"id": "a", "function": {"name": "f", "arguments": '{"x"'}},
      {"function": {"arguments": ": 1}"}}, {"id": "b", "function": {"name": "g"}}],
     [ToolCall("a", "f", '{"x": 1}'), ToolCall("b", "g", "")]),
    # No id at all (some local servers): numbered; arguments sent as an object.
    ([{"index": 0, "function": {"name": "f", "arguments": {"x": 1}}}],
     [ToolCall("call_0", "f", '{"x": 1}')]),
])
async def test_openai_calls_from_servers_that_leave_things_out(make_server, pieces, expected):
    reply = b"".join([sse({"choices": [{"delta": {"tool_calls": pieces}}]}), b"data: [DONE]\n\n"])
    server = make_server([("POST", "/v1/chat/completions", streaming([reply]))])
    events, err = await events_of(OpenAIChat, server.url + "/v1", HISTORY[:2], tools=TOOLS)
    assert err is None and [e for e in events if e.kind == "tool_call"] == expected


async def test_openai_whole_json_answer_with_calls(make_server):
    whole = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}}]}}]}
    server = make_server([("POST", "/v1/chat/completions", json_reply(whole))])
    events, err = await events_of(OpenAIChat, server.url + "/v1", HISTORY[:2], tools=TOOLS)
    assert err is None
    assert merged(events) == [*CALLS, ("finish", Finish("tool_calls", "tool_calls"))]


# -- Anthropic ----------------------------------------------------------------------------

def named(event: str, value) -> bytes:
    return f"event: {event}\n".encode() + sse({"type": event, **value})


def input_piece(index, text) -> bytes:
    return named("content_block_delta", {"index": index, "delta": {
        "type": "input_json_delta", "partial_json": text}})


ANTHROPIC_CALLS = b"".join([
    named("message_start", {"message": {"id": "m", "usage": {"input_tokens": 30,
                                                             "output_tokens": 1}}}),
    named("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    named("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                        "text": "Checking."}}),
    named("content_block_stop", {"index": 0}),
    named("content_block_start", {"index": 1, "content_block": {
        "type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}),
    input_piece(1, ""), input_piece(1, '{"ci'), input_piece(1, 'ty": "Pa'),
    input_piece(1, 'ris"}'),
    named("content_block_stop", {"index": 1}),
    named("content_block_start", {"index": 2, "content_block": {
        "type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}}),
    input_piece(2, '{"zone":'), input_piece(2, ' "CET"}'),
    named("content_block_stop", {"index": 2}),
    named("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
    named("message_stop", {}),
])


async def test_anthropic_tool_use_blocks_split_anywhere(make_server):
    for case, pieces in split_cases(ANTHROPIC_CALLS).items():
        server = make_server([("POST", "/v1/messages", streaming(pieces))])
        events, err = await events_of(Anthropic, server.url, HISTORY, api_key=KEY, tools=TOOLS)
        assert err is None, (case, err)
        assert merged(events) == [("usage", Usage(30, 1)), ("text", "Checking."), *CALLS,
                                  ("usage", Usage(None, 12)),
                                  ("finish", Finish("tool_calls", "tool_use"))], case


async def test_anthropic_request_carries_tool_use_and_results(make_server):
    server = make_server([("POST", "/v1/messages", streaming([ANTHROPIC_CALLS]))])
    await events_of(Anthropic, server.url, HISTORY, api_key=KEY, tools=TOOLS)
    assert server.requests[0].body == exact({
        "model": "claude-sonnet-4-5", "max_tokens": 8192,
        "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time",
                 "input": {"zone": "CET"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 21}'},
                {"type": "tool_result", "tool_use_id": "call_2",
                 "content": "ValueError: no clock", "is_error": True}]},
            {"role": "assistant", "content": "21 degrees; the clock failed."},
            {"role": "user", "content": "And tomorrow?"}],
        "system": "Be brief.",
        "tools": [{"name": "get_weather", "description": "Weather for a city.",
                   "input_schema": WEATHER["parameters"]},
                  {"name": "get_time", "description": "", "input_schema": CLOCK["parameters"]}],
        "stream": True})


async def test_anthropic_whole_answer_with_tool_use(make_server):
    whole = {"type": "message", "stop_reason": "tool_use", "content": [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"zone": "CET"}}]}
    server = make_server([("POST", "/v1/messages", json_reply(whole))])
    events, err = await events_of(Anthropic, server.url, HISTORY[:2], api_key=KEY, tools=TOOLS)
    assert err is None
    assert merged(events) == [*CALLS, ("finish", Finish("tool_calls", "tool_use"))]


# -- Ollama ---------------------------------------------------------------------------------

def line(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


OLLAMA_CALLS = b"".join([
    line({"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"index": 1, "name": "get_time", "arguments": {"zone": "CET"}}}]},
          "done": False}),
    line({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
          "prompt_eval_count": 30, "eval_count": 12}),
])


async def test_ollama_tool_calls_split_anywhere_get_ids(make_server):
    for case, pieces in split_cases(OLLAMA_CALLS).items():
        server = make_server([("POST", "/api/chat", streaming(
            pieces, content_type="application/x-ndjson"))])
        events, err = await events_of(Ollama, server.url, HISTORY, tools=TOOLS)
        assert err is None, (case, err)
        assert merged(events) == [
            ("tool_call", ToolCall("call_0", "get_weather", '{"city": "Paris"}')),
            ("tool_call", ToolCall("call_1", "get_time", '{"zone": "CET"}')),
            ("usage", Usage(30, 12)), ("finish", Finish("stop", "stop"))], case


async def test_ollama_request_carries_tools_calls_and_results(make_server):
    server = make_server([("POST", "/api/chat", streaming([OLLAMA_CALLS]))])
    await events_of(Ollama, server.url, HISTORY, tools=TOOLS)
    assert server.requests[0].body == exact({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {"zone": "CET"}}}]},
            {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"},
            {"role": "tool", "content": "Error: ValueError: no clock", "tool_name": "get_time"},
            {"role": "assistant", "content": "21 degrees; the clock failed."},
            {"role": "user", "content": "And tomorrow?"}],
        "stream": True, "options": {},
        "tools": [{"type": "function", "function": WEATHER},
                  {"type": "function", "function": CLOCK}]})


# -- who takes no tools ---------------------------------------------------------------------

@pytest.mark.parametrize("cls", [Cromicle, OpenAssistant, Vitalentum, Lockchat])
async def test_the_classic_four_refuse_tools_before_sending(make_server, cls):
    server = make_server([("POST", "/chat", streaming([b"x"]))])
    _, err = await events_of(cls, server.url, HISTORY[:2], tools=TOOLS)
    assert isinstance(err, errors.UsageError) and "cannot call tools" in str(err)
    assert server.requests == []


async def test_a_foreign_class_refuses_tools_and_its_tool_calls_become_a_note():
    class ToolCalls:  # gpt4free 8.x's response object, by class name
        list = [{"id": "x", "type": "function", "function": {"name": "rm_rf", "arguments": "{}"}}]

    class Foreign:
        @classmethod
        async def create_async_generator(cls, model, messages, proxy=None, **kwargs):
            yield "Sure."
            yield ToolCalls()

    with pytest.raises(errors.UsageError, match="cannot call tools"):
        async for _ in stream_events(Foreign, None, HISTORY[:2], tools=TOOLS):
            pass
    found = [e async for e in stream_events(Foreign, None, HISTORY[:2])]
    assert found[0].text == "Sure." and isinstance(found[1], Note)
    assert "rm_rf" in found[1].text and "nothing was run" in found[1].text
    assert from_foreign(ToolCall("i", "f", "{}")).kind == "note"


async def test_earlier_tool_use_reaches_a_classic_provider_as_text(make_server):
    server = make_server([("POST", "/api/converse-edge", streaming([b"data: [DONE]\n\n"]))])
    await events_of(Vitalentum, server.url, HISTORY)
    history = json.loads(server.requests[0].json()["conversation"])["history"]
    assert history[2] == {"speaker": "bot", "text": (
        'Checking.\n[called get_weather({"city": "Paris"})]\n[called get_time({"zone": "CET"})]\n'
        '[get_weather returned: {"temp": 21}]\n[get_time raised: ValueError: no clock]\n'
        "21 degrees; the clock failed.")}
    assert folded(HISTORY[:2]) is not None and folded(HISTORY[:2]) == HISTORY[:2]


async def test_anthropic_drops_empty_turns_and_takes_a_whole_input(make_server):
    given = named("content_block_start", {"index": 0, "content_block": {
        "type": "tool_use", "id": "t1", "name": "get_time", "input": {"zone": "UTC"}}})
    reply = given + named("content_block_stop", {"index": 0}) + named("message_stop", {})
    server = make_server([("POST", "/v1/messages", streaming([reply]))])
    history = [*HISTORY[1:5], {"role": "assistant", "content": ""}, HISTORY[-1]]
    events, err = await events_of(Anthropic, server.url, history, api_key=KEY, tools=TOOLS)
    assert err is None and events == [ToolCall("t1", "get_time", '{"zone": "UTC"}')]
    roles = [m["role"] for m in server.requests[0].json()["messages"]]
    assert roles == ["user", "assistant", "user", "user"]  # the API joins the two user turns


async def test_a_chain_keeps_a_provider_whose_turn_only_calls_tools(make_server):
    from ipychat.providers import ProviderChain

    first = make_server([("POST", "/v1/chat/completions", streaming([OPENAI_CALLS]))])
    second = make_server([("POST", "/api/chat", streaming([OLLAMA_CALLS]))])
    chain = ProviderChain([(OpenAIChat, {"base_url": first.url + "/v1"}),
                           (Ollama, {"base_url": second.url})])
    events = [e async for e in chain.stream(None, HISTORY[:2], tools=TOOLS)]
    assert [e for e in events if e.kind == "tool_call"] == [call for _, call in CALLS]
    assert second.requests == []
