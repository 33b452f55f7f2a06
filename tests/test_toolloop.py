"""The tool loop through each provider against recording servers: the calls
run with the right arguments, the next request carries them and their
results in the protocol's own form (byte for byte), and the final answer
goes on in the same view. Also: a tool that raises, bad arguments, a tool
that does not exist, the round limit, and interrupts inside slow tools,
async (cancelled) and plain (SIGINT)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import pytest

from ipychat.answer import Answer
from ipychat.render import StreamView
from ipychat.session import Conversation, Interrupted
from ipychat.targets import resolve
from ipychat.tools import ToolBox
from ipychat.toolloop import answer_into
from tests.test_provider_base import split_cases
from tests.support.server import SERVER, stream_pieces

KEY = "sk-loop-Very-Secret-0123456789"
QUESTION = "Weather and time in Paris?"
BOUND = 10  # seconds any wait on another thread may take at most


def get_weather(city: str) -> dict:
    """Weather for a city."""
    CALLED.append(("get_weather", city))
    return {"temp": 21}


def get_time(zone: str):
    CALLED.append(("get_time", zone))
    raise ValueError("no clock")


CALLED = []
TOOLS = ToolBox.of([get_weather, get_time])


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLED.clear()


def sse(value, event=None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(value).encode() + b"\n\n"


def line(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


class OpenAIWire:
    name, path, model = "openai", "/v1/chat/completions", "gpt-4o-mini"

    def calls(self, calls, text=""):
        frames = [sse({"choices": [{"delta": {"content": text}}]})] if text else []
        for i, (call_id, name, arguments) in enumerate(calls):
            frames.append(sse({"choices": [{"delta": {"tool_calls": [{
                "index": i, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments[:3]}}]}}]}))
            frames.append(sse({"choices": [{"delta": {"tool_calls": [{
                "index": i, "function": {"arguments": arguments[3:]}}]}}]}))
        done = sse({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
        return b"".join(frames) + done + b"data: [DONE]\n\n"

    def text(self, text):
        return (sse({"choices": [{"delta": {"content": text}}]})
                + sse({"choices": [{"delta": {}, "finish_reason": "stop"}]})
                + b"data: [DONE]\n\n")

    def followup(self, text, calls, results):
        return {"model": self.model, "messages": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": text or None, "tool_calls": [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                for i, n, a in calls]},
            *[{"role": "tool", "tool_call_id": i,
               "content": f"Error: {content}" if failed else content}
              for (i, _, _), (content, failed) in zip(calls, results)]],
            "tools": [{"type": "function", "function": s} for s in TOOLS.schemas],
            "stream": True, "stream_options": {"include_usage": True}}


class AnthropicWire:
    name, path, model = "anthropic", "/v1/messages", "claude-sonnet-4-5"

    def calls(self, calls, text=""):
        frames = [sse({"type": "message_start", "message": {"usage": {}}}, "message_start")]
        if text:
            frames.append(sse({"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": text}}, "content_block_delta"))
        for i, (call_id, name, arguments) in enumerate(calls, 1):
            frames.append(sse({"type": "content_block_start", "index": i, "content_block": {
                "type": "tool_use", "id": call_id, "name": name, "input": {}}},
                "content_block_start"))
            frames += [sse({"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": piece}}, "content_block_delta")
                for piece in (arguments[:3], arguments[3:])]
            frames.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
        frames.append(sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
                          "message_delta"))
        return b"".join(frames) + sse({"type": "message_stop"}, "message_stop")

    def text(self, text):
        return b"".join([
            sse({"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": text}}, "content_block_delta"),
            sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
                "message_delta"),
            sse({"type": "message_stop"}, "message_stop")])

    def followup(self, text, calls, results):
        uses = [{"type": "tool_use", "id": i, "name": n, "input": _object(a)}
                for i, n, a in calls]
        blocks = [{"type": "tool_result", "tool_use_id": i, "content": content,
                   **({"is_error": True} if failed else {})}
                  for (i, _, _), (content, failed) in zip(calls, results)]
        return {"model": self.model, "max_tokens": 8192, "messages": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ([{"type": "text", "text": text}] if text else [])
             + uses},
            {"role": "user", "content": blocks}],
            "tools": [{"name": s["name"], "description": s["description"],
                       "input_schema": s["parameters"]} for s in TOOLS.schemas],
            "stream": True}


class OllamaWire:
    name, path, model = "ollama", "/api/chat", "llama3.2"

    def calls(self, calls, text=""):
        message = {"role": "assistant", "content": text, "tool_calls": [
            {"function": {"name": n, "arguments": _object(a, raw=True)}} for _, n, a in calls]}
        return line({"message": message, "done": False}) + self._done()

    def text(self, text):
        return line({"message": {"role": "assistant", "content": text}, "done": False}) \
            + self._done()

    def _done(self):
        return line({"message": {"role": "assistant", "content": ""}, "done": True,
                     "done_reason": "stop"})

    def followup(self, text, calls, results):
        return {"model": self.model, "messages": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": text, "tool_calls": [
                {"function": {"name": n, "arguments": _object(a)}} for _, n, a in calls]},
            *[{"role": "tool", "content": f"Error: {content}" if failed else content,
               "tool_name": n} for (_, n, _), (content, failed) in zip(calls, results)]],
            "stream": True, "options": {},
            "tools": [{"type": "function", "function": s} for s in TOOLS.schemas]}


def _object(arguments, raw=False):
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments if raw else {}
    return value if isinstance(value, dict) else {}


WIRES = [OpenAIWire(), AnthropicWire(), OllamaWire()]


def ids(wire, count):
    """Ollama sends no ids: ipychat numbers the calls of a turn."""
    return [f"call_{n}" if wire.name == "ollama" else f"c{n + 1}" for n in range(count)]


def answering(replies, content_type):
    """A handler that answers the n-th request with ``replies[n]`` (the last one
    again after that), each split into one-byte pieces."""
    async def handler(request, rec):
        n = request.app[SERVER].requests.index(rec)
        reply = replies[min(n, len(replies) - 1)]
        return await stream_pieces(request, split_cases(reply)["one_byte_per_piece"],
                                   content_type=content_type)
    return handler


def serve(make_server, wire, replies):
    content_type = "application/x-ndjson" if wire.name == "ollama" else "text/event-stream"
    return make_server([("POST", wire.path, answering(replies, content_type))])


def target_of(wire, server):
    options = {"api_key": KEY} if wire.name == "anthropic" else {}
    return resolve(wire.name, base_url=server.url + ("/v1" if wire.name == "openai" else ""),
                   options=options, demo=False)


def view():
    shown = []
    found = StreamView(interval=0, publish=lambda data, handle: shown.append(data) or "h")
    found.start()
    return found, shown


async def ask(wire, server, tools=TOOLS, **kwargs):
    shown_view, shown = view()
    answer = Answer(QUESTION, wire.name)
    messages = [{"role": "user", "content": QUESTION}]
    await answer_into(target_of(wire, server), messages, shown_view, answer, tools, **kwargs)
    return answer, shown[-1]


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
async def test_two_calls_run_and_their_results_go_back_byte_for_byte(make_server, wire):
    first, second = ids(wire, 2)
    calls = [(first, "get_weather", '{"city": "Paris"}'), (second, "get_time", '{"zone": "CET"}')]
    server = serve(make_server, wire, [wire.calls(calls, "Checking."), wire.text("It is 21.")])
    answer, shown = await ask(wire, server)
    assert CALLED == [("get_weather", "Paris"), ("get_time", "CET")]
    results = [('{"temp": 21}', False), ("ValueError: no clock", True)]
    assert server.requests[1].body == json.dumps(wire.followup("Checking.", calls, results)
                                                 ).encode()
    assert answer.complete and answer.text == "Checking.\n\nIt is 21."
    assert [(r.name, r.arguments, r.result, r.error) for r in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"}, '{"temp": 21}', None),
        ("get_time", {"zone": "CET"}, None, "ValueError: no clock")]
    assert all(r.seconds is not None and r.seconds >= 0 for r in answer.tool_calls)
    plain = shown["text/plain"]
    assert plain.startswith("Checking.\n\nIt is 21.\n\n[tool] get_weather(city=\"Paris\") → "
                            '{"temp": 21}\n[tool] get_time(zone="CET") ✗ ValueError: no clock')
    assert "<details><summary>2 tool calls</summary>" in shown["text/markdown"]


@pytest.mark.parametrize("wire, arguments, problem", [
    (WIRES[0], '{"city": ', "the arguments are not JSON"),
    (WIRES[1], '{"town": "Paris"}', "'town' is not a parameter of get_weather"),
    (WIRES[2], '{"city": 75001}', "'city' must be a string, not 75001"),
], ids=lambda v: getattr(v, "name", ""))
async def test_bad_arguments_never_reach_the_function(make_server, wire, arguments, problem):
    (call_id,) = ids(wire, 1)
    calls = [(call_id, "get_weather", arguments)]
    server = serve(make_server, wire, [wire.calls(calls), wire.text("Sorry.")])
    answer, shown = await ask(wire, server)
    assert CALLED == [] and answer.complete
    (run,) = answer.tool_calls
    assert run.error.startswith(f"bad arguments for get_weather: {problem}")
    results = [(run.error, True)]
    assert server.requests[1].body == json.dumps(wire.followup("", calls, results)).encode()
    assert "get_weather(" in shown["text/plain"] and "✗ bad arguments" in shown["text/plain"]


async def test_a_call_to_a_tool_not_offered_runs_nothing(make_server):
    wire = WIRES[0]
    server = serve(make_server, wire, [wire.calls([("c1", "os_system", '{"cmd": "rm"}')]),
                                       wire.text("Ok.")])
    answer, _ = await ask(wire, server)
    (run,) = answer.tool_calls
    assert run.error == ("there is no tool named 'os_system'; the tools are get_weather, "
                         "get_time")
    assert server.requests[1].json()["messages"][-1]["content"] == f"Error: {run.error}"


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
async def test_the_round_limit_stops_the_loop_with_a_mark(make_server, wire):
    (call_id,) = ids(wire, 1)
    server = serve(make_server, wire, [wire.calls([(call_id, "get_weather", '{"city": "P"}')])])
    answer, shown = await ask(wire, server, max_rounds=2)
    assert len(server.requests) == 3 and CALLED == [("get_weather", "P")] * 2
    assert answer.complete and answer.tool_limit == 2
    assert shown["text/plain"].startswith(
        '[tool] get_weather(city="P") → {"temp": 21}\n' * 2
        + "\n*(stopped after 2 tool rounds: raise the limit with --max-tool-rounds)*")
    chat = Conversation()
    chat.record(answer)
    sent = chat.messages_for("next")
    # The calls of the last turn never ran: the history does not carry them.
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool",
                                         "assistant", "user"]
    assert "tool_calls" not in sent[-2]


async def test_no_tools_offered_means_calls_are_noted_not_run(make_server):
    wire = WIRES[0]
    server = serve(make_server, wire, [wire.calls([("c1", "get_weather", '{"city": "P"}')])])
    answer, shown = await ask(wire, server, tools=None)
    assert CALLED == [] and len(server.requests) == 1 and answer.tool_calls == []
    assert "tools" not in server.requests[0].json()
    assert ("(note: the model asked to call get_weather, but no tools were offered: "
            "not run)") in shown["text/plain"]


# -- interrupts ---------------------------------------------------------------------

async def test_cancel_inside_an_async_tool_cancels_it_and_keeps_what_was_shown(make_server):
    wire = WIRES[0]
    started, finished = asyncio.Event(), []

    async def slow(seconds: float):
        started.set()
        try:
            await asyncio.sleep(seconds)
        finally:
            finished.append(True)

    server = serve(make_server, wire, [wire.calls([("c1", "slow", '{"seconds": 60}')],
                                                  "Waiting."), wire.text("never")])
    shown_view, shown = view()
    answer = Answer(QUESTION, "openai")
    task = asyncio.create_task(answer_into(
        target_of(wire, server), [{"role": "user", "content": QUESTION}], shown_view, answer,
        [slow]))
    await asyncio.wait_for(started.wait(), BOUND)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, BOUND)
    assert finished == [True] and len(server.requests) == 1
    assert answer.status == "interrupted" and answer.tool_calls[0].error == "interrupted"
    assert shown[-1]["text/plain"] == ('Waiting.\n\n[tool] slow(seconds=60) ✗ interrupted'
                                       "\n\n*(interrupted)*")
    chat = Conversation()
    chat.record(answer)
    assert chat.turns == []  # an interrupted loop never enters the history


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals land on the main thread")
async def test_sigint_inside_a_plain_tool_interrupts_it(make_server):
    wire = WIRES[0]
    started, outcome = threading.Event(), []

    def slow(seconds: float):
        started.set()
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            time.sleep(0.05)  # a blocking call: the loop cannot run meanwhile
        outcome.append("ran to the end")  # the interrupt did not land

    def interrupt():
        if started.wait(BOUND):
            os.kill(os.getpid(), signal.SIGINT)

    def kernel_like(signum, frame):  # ipykernel's: only schedules a cancel on the loop
        scheduled.append(signum)

    scheduled = []
    server = serve(make_server, wire, [wire.calls([("c1", "slow", '{"seconds": 60}')]),
                                       wire.text("never")])
    threading.Thread(target=interrupt, daemon=True).start()
    previous = signal.signal(signal.SIGINT, kernel_like)
    try:
        with pytest.raises(Interrupted):
            await ask(wire, server, tools=[slow])
        assert signal.getsignal(signal.SIGINT) is kernel_like  # the kernel's handler is back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcome == [] and scheduled == [] and len(server.requests) == 1


@pytest.mark.parametrize("name, base", [("openai", "/v1"), ("anthropic", ""),
                                        ("ollama", "/ollama")])
async def test_a_follow_up_after_the_round_limit_is_accepted(name, base):
    """The emulator refuses unpaired calls and empty turns as the APIs do."""
    from ipychat.emulator import EmulatorServer

    ask = "[[emulator call=get_weather args='{\"city\": \"P\"}' rounds=5]]"
    chat = Conversation()
    with EmulatorServer(delay=0) as emulator:
        options = {"api_key": KEY} if name == "anthropic" else {}
        target = resolve(name, base_url=emulator.url + base, options=options, demo=False,
                         model="emulator")
        for question, limit in ((ask, True), ("And now?", False)):
            shown_view, _ = view()
            answer = Answer(question, name)
            await answer_into(target, chat.messages_for(question), shown_view, answer, TOOLS,
                              max_rounds=1)
            assert answer.complete and (answer.tool_limit == 1) is limit
            chat.record(answer)
    assert len(chat.turns) == 2 and "> And now?" in chat.turns[1].text
