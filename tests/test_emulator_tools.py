"""Tool calls from the emulator, in each protocol's wire form, on request by a
``call=`` directive: whole event lists for the calling turn, arguments given
or derived from the schema, the turn after that quoting the results it was
sent, and requests whose calls and results do not pair refused as the real
APIs refuse them."""

from __future__ import annotations

import pytest

from ipychat.emulator.reply import reply_text, split_pieces
from ipychat.emulator.tooluse import Result, derived_arguments
from tests.test_emulator_kit import ANTHROPIC_HEADERS, MODELS, emu, post, server  # noqa: F401
from tests.test_emulator_shapes import (anthropic_message, ask_anthropic, ask_ollama,
                                        ask_openai, ollama_final, openai_chunk)

WEATHER = {"name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "required": ["city", "days"], "properties": {
               "city": {"type": "string"}, "days": {"type": "integer"},
               "unit": {"type": "string", "enum": ["C", "F"]}}}}
CLOCK = {"name": "get_time", "description": "",
         "parameters": {"type": "object", "properties": {}}}
FUNCTIONS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": CLOCK}]
ANTHROPIC_TOOLS = [{"name": t["name"], "description": t["description"],
                    "input_schema": t["parameters"]} for t in (WEATHER, CLOCK)]
ASK = "Weather? [[emulator call=get_weather,get_time args='[{\"city\": \"Paris\"}, {}]']]"
PARIS = '{"city": "Paris"}'


def test_arguments_derived_from_a_schema():
    assert derived_arguments(WEATHER["parameters"]) == {"city": "example", "days": 1}
    assert derived_arguments({"required": ["u", "n"], "properties": {
        "u": {"enum": [None, "F"]}, "n": {"type": ["null", "number"]}}}) == {"u": "F", "n": 1.5}


def pieces(text: str) -> list:
    return split_pieces(text)


# -- OpenAI -------------------------------------------------------------------------

async def test_openai_streams_two_calls_arguments_in_pieces(emu):
    raw = await ask_openai(emu.url, ASK, tools=FUNCTIONS)
    events = raw.strict_sse()
    first = events[0][1]
    deltas = [{"role": "assistant", "content": None},
              {"tool_calls": [{"index": 0, "id": "call_1_0", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]},
              *[{"tool_calls": [{"index": 0, "function": {"arguments": p}}]}
                for p in pieces(PARIS)],
              {"tool_calls": [{"index": 1, "id": "call_1_1", "type": "function",
                               "function": {"name": "get_time", "arguments": ""}}]},
              {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}]
    assert pieces(PARIS) == ['{"city": ', '"Paris"}']  # split inside the arguments
    assert events == ([(None, openai_chunk(first, d)) for d in deltas]
                      + [(None, openai_chunk(first, {}, "tool_calls")), (None, "[DONE]")])


async def test_openai_answers_with_the_results_it_was_sent(emu):
    messages = [
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "get_weather",
                                                         "arguments": PARIS}}]},
        {"role": "tool", "tool_call_id": "a", "content": '{"temp": 21}'}]
    raw = await post(emu.url + "/v1/chat/completions", {
        "model": MODELS["openai"], "messages": messages, "tools": FUNCTIONS})
    received = [{"role": "user", "content": ASK}, {"role": "assistant", "content": ""},
                {"role": "tool", "content": '{"temp": 21}'}]
    text = reply_text("openai", received, MODELS["openai"], [Result("get_weather", '{"temp": 21}')])
    assert raw.json()["choices"][0]["message"]["content"] == text
    assert "Tool results received:\n\n> get_weather: {\"temp\": 21}\n" in text


async def test_openai_whole_answer_with_calls_and_derived_arguments(emu):
    raw = await ask_openai(emu.url, "Weather? [[emulator call=get_weather]]", tools=FUNCTIONS,
                           stream=False)
    message = raw.json()["choices"][0]["message"]
    assert raw.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None and message["tool_calls"] == [
        {"id": "call_1_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "example", "days": 1}'}}]


@pytest.mark.parametrize("messages, words", [
    ([{"role": "tool", "tool_call_id": "x", "content": "1"}], "must be a response to a "
     "preceding message with 'tool_calls'"),
    ([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "user", "content": "next"}], "did not have response messages: a"),
])
async def test_openai_refuses_calls_and_results_that_do_not_pair(emu, messages, words):
    raw = await post(emu.url + "/v1/chat/completions", {
        "model": MODELS["openai"], "messages": [{"role": "user", "content": "q"}, *messages]})
    assert raw.status == 400 and words in raw.json()["error"]["message"]


async def test_a_directive_naming_a_tool_not_offered_is_refused(emu):
    raw = await ask_openai(emu.url, "[[emulator call=rm]]", tools=FUNCTIONS)
    assert raw.status == 400
    assert raw.json()["error"]["message"] == (
        "bad emulator directive: call=rm: the request offers no tool rm (it offers "
        "get_weather, get_time)")


async def test_rounds_calls_again_until_that_many_turns_called(emu):
    ask = "[[emulator call=get_time rounds=2]]"
    history = [{"role": "user", "content": ask}]
    finishes = []
    for _ in range(3):
        body = (await ask_openai(emu.url, ask, tools=FUNCTIONS, stream=False,
                                 messages=history)).json()
        choice = body["choices"][0]
        finishes.append(choice["finish_reason"])
        if choice["finish_reason"] == "tool_calls":
            history += [choice["message"], {"role": "tool", "content": "noon",
                                            "tool_call_id": choice["message"]["tool_calls"][0]["id"]}]
    assert finishes == ["tool_calls", "tool_calls", "stop"]
    assert "> get_time: noon\n> get_time: noon\n" in choice["message"]["content"]
    ids = [m["tool_calls"][0]["id"] for m in history if m.get("tool_calls")]
    assert ids == ["call_1_0", "call_3_0"]  # unique within the conversation


# -- Anthropic ------------------------------------------------------------------------

async def test_anthropic_streams_tool_use_blocks(emu):
    raw = await ask_anthropic(emu.url, ASK, tools=ANTHROPIC_TOOLS)
    events = raw.strict_sse()
    first = events[0][1]["message"]

    def block(index, kind, **fields):
        return (kind, {"type": kind, "index": index, **fields})

    expected = [("message_start", {"type": "message_start", "message": anthropic_message(
        first, [], None, len(ASK.split()), 1)}), ("ping", {"type": "ping"})]
    for index, (name, arguments) in enumerate([("get_weather", PARIS), ("get_time", "{}")]):
        expected.append(block(index, "content_block_start", content_block={
            "type": "tool_use", "id": f"call_1_{index}", "name": name, "input": {}}))
        expected += [block(index, "content_block_delta", delta={
            "type": "input_json_delta", "partial_json": p}) for p in pieces(arguments)]
        expected.append(block(index, "content_block_stop"))
    expected += [("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 3}}),
        ("message_stop", {"type": "message_stop"})]
    assert events == expected


async def test_anthropic_quotes_results_and_errors(emu):
    messages = [
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "b", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "b", "is_error": True,
             "content": [{"type": "text", "text": "ValueError: no clock"}]}]}]
    raw = await post(emu.url + "/v1/messages", {"model": MODELS["anthropic"], "max_tokens": 99,
                                                "messages": messages, "tools": ANTHROPIC_TOOLS},
                     headers=ANTHROPIC_HEADERS)
    (text,) = raw.json()["content"]
    assert text["text"].startswith("**Emulator answer (anthropic)**")
    assert ("Tool results received:\n\n> get_weather: sunny\n"
            "> get_time (error): ValueError: no clock\n") in text["text"]
    assert "> Weather? [[emulator call=" in text["text"]  # the question, not the results


@pytest.mark.parametrize("messages, words", [
    ([{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f",
                                          "input": {}}]},
      {"role": "user", "content": "next"}],
     "`tool_use` ids were found without `tool_result` blocks immediately after: a"),
    ([{"role": "assistant", "content": "hi"},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "z", "content": ""}]}],
     "unexpected `tool_use_id` found in `tool_result` blocks: z"),
])
async def test_anthropic_refuses_unpaired_tool_use(emu, messages, words):
    raw = await post(emu.url + "/v1/messages", {
        "model": MODELS["anthropic"], "max_tokens": 99,
        "messages": [{"role": "user", "content": "q"}, *messages]}, headers=ANTHROPIC_HEADERS)
    assert raw.status == 400 and words in raw.json()["error"]["message"]


# -- Ollama -------------------------------------------------------------------------------

async def test_ollama_sends_calls_whole_with_object_arguments(emu):
    raw = await ask_ollama(emu.url, ASK, tools=FUNCTIONS)
    calls_line = {"model": MODELS["ollama"], "created_at": "2024-01-01T00:00:00Z",
                  "message": {"role": "assistant", "content": "", "tool_calls": [
                      {"function": {"index": 0, "name": "get_weather",
                                    "arguments": {"city": "Paris"}}},
                      {"function": {"index": 1, "name": "get_time", "arguments": {}}}]},
                  "done": False}
    assert raw.lines() == [calls_line, ollama_final(len(ASK.split()), 3)]


async def test_ollama_quotes_results_by_tool_name_or_order(emu):
    messages = [{"role": "user", "content": ASK},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {}}},
                    {"function": {"name": "get_time", "arguments": {}}}]},
                {"role": "tool", "content": "sunny"},
                {"role": "tool", "content": "noon", "tool_name": "get_time"}]
    raw = await post(emu.url + "/ollama/api/chat", {"model": MODELS["ollama"],
                                                     "messages": messages, "stream": False})
    assert "> get_weather: sunny\n> get_time: noon\n" in raw.json()["message"]["content"]


async def test_bad_arguments_on_request_are_sent_as_given(emu):
    ask = "[[emulator call=get_weather args='{\"city\": ']]"
    body = (await ask_openai(emu.url, ask, tools=FUNCTIONS, stream=False)).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == \
        '{"city": '
    line = (await ask_ollama(emu.url, ask, tools=FUNCTIONS, stream=False)).json()
    assert line["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": '
