"""ChatPanel with tools, without a browser (``tests.support.page.Page`` is the
page): the model calls the functions the panel offers, each call's line
reaches the page before the function runs and again with its result, and
the panel ends every way a tool can end. The built-in emulator plays the
model (demo mode), on 127.0.0.1; it calls tools when a question's
``[[emulator call=...]]`` directive asks it to."""

from __future__ import annotations

import asyncio
import json

import pytest

from ipychat import errors, tool
from ipychat.answer import Answer, Round, ToolRun
from ipychat.panel import STOPPED, ChatPanel
from ipychat.session import Conversation
from ipychat.transcript import as_markdown, reply
from tests.support.page import Page
from tests.test_panel import WAIT, ask, clean_env, panel_for, raw, until

pytestmark = pytest.mark.timeout(60)
__all__ = ["clean_env"]  # an autouse fixture, used by name

PARIS = """Weather in Paris? [[emulator call=get_weather args='{"city": "Paris"}']]"""
PARIS_LINE = 'get_weather(city="Paris")'


def directive(call: str, args) -> str:
    return f"[[emulator call={call} args='{json.dumps(args)}']]"


class Weather:
    """A tool that notes what the page showed when it ran."""

    def __init__(self):
        self.page = None
        self.seen = []  # the call lines on the page as each call began

    def get_weather(self, city: str) -> dict:
        """Today's weather in a city."""
        self.seen.append(self.page.ordered()[-1]["calls"])
        return {"city": city, "temp": 21}


def tooled(*tools, **kwargs):
    panel = ChatPanel(Conversation(), provider="openai", tools=list(tools), **kwargs)
    return panel, Page(panel)


async def test_a_call_shows_before_the_tool_runs_and_with_its_result_after():
    weather = Weather()
    panel, page = tooled(weather.get_weather)
    weather.page = page
    assert panel.tool_names == ["get_weather"]
    await ask(panel, PARIS)
    assert weather.seen == [[f"{PARIS_LINE} …"]]  # sent at once, though the tool blocks the loop
    answer = page.ordered()[1]
    assert answer["state"] == "complete"
    assert answer["calls"] == [f'{PARIS_LINE} → {{"city": "Paris", "temp": 21}}']
    assert " · 1 tool call" in answer["stats"]
    # Only the updates where a line changed carry the lines: first whole, started, ended.
    carried = [m["calls"] for m in page.upserts() if m["role"] == "assistant" and "calls" in m]
    assert carried == [[], [f"{PARIS_LINE} …"], answer["calls"]]
    assert answer == {**panel.messages()[1], "text": answer["text"]}  # the updates lose nothing
    (turn,) = panel.conversation.turns
    assert [(r.name, r.arguments, r.error) for r in turn.tool_calls] == [
        ("get_weather", {"city": "Paris"}, None)]


async def test_the_next_question_carries_the_calls_and_their_results():
    weather = Weather()
    panel, weather.page = tooled(weather.get_weather)
    await ask(panel, PARIS)
    sent = panel.conversation.messages_for("And tomorrow?")
    roles = [m["role"] for m in sent]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["tool_calls"][0]["name"] == "get_weather"
    assert json.loads(sent[2]["content"]) == {"city": "Paris", "temp": 21}


async def test_a_tool_that_raises_shows_its_error_and_the_answer_goes_on():
    @tool(description="How many are in stock.")
    def stock(item: str) -> int:
        raise KeyError(item)

    panel, page = tooled(stock)
    await ask(panel, "Umbrellas? " + directive("stock", {"item": "umbrella"}))
    answer = page.ordered()[1]
    assert answer["calls"] == ["""stock(item="umbrella") ✗ KeyError: 'umbrella'"""]
    assert answer["state"] == "complete" and panel.status_kind == "done"


async def test_two_calls_in_one_turn_show_in_order():
    weather = Weather()

    async def clock(zone: str) -> str:
        """The time in a zone."""
        return "12:00"

    panel, page = tooled(weather.get_weather, clock)
    weather.page = page
    await ask(panel, "Both? " + directive("get_weather,clock", [{"city": "Oslo"}, {"zone": "CET"}]))
    assert page.ordered()[1]["calls"] == ['get_weather(city="Oslo") → {"city": "Oslo", "temp": 21}',
                                         'clock(zone="CET") → 12:00']


async def test_the_round_limit_is_a_mark_that_names_the_panels_setting():
    weather = Weather()
    panel, page = tooled(weather.get_weather, max_tool_rounds=2)
    weather.page = page
    await ask(panel, "Again. " + directive("get_weather", {"city": "Lima"})[:-2] + " rounds=5]]")
    answer = page.ordered()[1]
    assert len(answer["calls"]) == 2
    assert answer["mark"] == "stopped after 2 tool rounds: raise max_tool_rounds"


async def test_stop_during_an_async_tool_cancels_it_and_keeps_the_line():
    started, outcome = asyncio.Event(), []

    async def slow(seconds: int) -> str:
        """Wait."""
        started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return "too late"

    panel, page = tooled(slow)
    assert panel.ask("Wait. " + directive("slow", {"seconds": 30}))
    await asyncio.wait_for(started.wait(), WAIT)
    assert page.ordered()[1]["calls"] == ["slow(seconds=30) …"]
    page.say("stop")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(panel.task, WAIT)
    assert outcome == ["cancelled"]
    assert page.ordered()[1]["calls"] == ["slow(seconds=30) ✗ interrupted"]
    assert page.ordered()[1]["mark"] == "interrupted"
    assert panel.status_text == STOPPED and not panel.busy
    assert panel.conversation.turns == []  # a loop cut short never enters the history


async def test_an_interrupt_inside_a_plain_tool_stops_the_answer():
    def stuck(seconds: int) -> str:
        """Blocks until Kernel > Interrupt."""
        raise KeyboardInterrupt  # what runner.interruptible lets a SIGINT raise here

    panel, page = tooled(stuck)
    await ask(panel, "Wait. " + directive("stuck", {"seconds": 30}))
    assert page.ordered()[1]["calls"] == ["stuck(seconds=30) ✗ interrupted"]
    assert panel.status_text == STOPPED and panel.status_kind == "info" and not panel.busy
    assert panel.conversation.turns == []


async def test_a_provider_that_cannot_call_tools_is_one_line_and_nothing_is_sent(make_server):
    server = make_server([("POST", "/chat", raw(["never"]))])
    panel = panel_for(server, tools=[Weather().get_weather])
    page = Page(panel)
    assert not panel.ask("hi")
    assert panel.status_text.startswith("cromicle cannot call tools.")
    assert "\n" not in panel.status_text and panel.status_kind == "error"
    assert server.requests == [] and panel.task is None and not panel.busy
    assert len(page.ordered()) == 0


def test_a_function_that_cannot_be_a_tool_fails_when_the_panel_is_made():
    def anything(*args):
        return args

    with pytest.raises(errors.UsageError) as caught:
        ChatPanel(Conversation(), provider="openai", tools=[anything])
    assert "*args" in str(caught.value) and "\n" not in str(caught.value)


async def test_a_replayed_answer_runs_no_tool(tmp_path):
    from ipychat.log import Log
    from ipychat.recorder import Recorder

    recorder = Recorder(Log(tmp_path / "log.db", timeout=0.3))
    weather = Weather()
    panel, page = tooled(weather.get_weather, recorder=recorder)
    weather.page = page
    await ask(panel, PARIS)
    recorder.set_mode("on")
    again, again_page = tooled(weather.get_weather, recorder=recorder)
    weather.page = again_page
    await ask(again, PARIS)
    assert len(weather.seen) == 1  # the tool ran for the live answer only
    assert "(replayed from the log (" in again.status_text
    assert again.last_answer.text == panel.last_answer.text


def test_the_page_gets_lines_only_and_export_keeps_them():
    answer = Answer("q", "OpenAIChat", text="It is sunny.", status="complete", duration_s=1.0)
    answer.rounds = [Round("", [ToolRun("c1", "look", {"q": "<b>``x``</b>"}, result="```ok")]),
                     Round("It is sunny.")]
    message = reply(answer, "t1")
    assert message["calls"] == ['look(q="<b>``x``</b>") → ```ok']  # text: the page escapes it
    exported = as_markdown([answer], "scope")
    assert '````text\nlook(q="<b>``x``</b>") → ```ok\n````' in exported
