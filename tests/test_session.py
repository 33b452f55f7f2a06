import asyncio

import pytest

from ipychat import errors
from ipychat.answer import Answer, last_result
from ipychat.events import Finish, Reasoning, Text, Usage
from ipychat.live import Collector
from ipychat.session import Conversation, stream_into


def done(prompt, text, provider="P", status="complete", reasoning=""):
    return Answer(prompt, provider, text=text, status=status, reasoning=reasoning)


def test_messages_carry_system_history_and_prompt():
    chat = Conversation(system="be brief")
    chat.record(done("one", "1"))
    assert chat.messages_for("two") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"},
        {"role": "user", "content": "two"},
    ]
    assert chat.messages_for("x", use_history=False, system="") == [{"role": "user", "content": "x"}]


def test_reasoning_never_goes_back_to_the_model():
    chat = Conversation()
    chat.record(done("q", "the answer", reasoning="secret thoughts"))
    assert "secret" not in str(chat.messages_for("next"))


def test_incomplete_or_unremembered_turns_stay_out_of_history():
    chat = Conversation()
    chat.record(done("cut", "par", status="interrupted"))
    assert last_result().prompt == "cut"
    chat.record(done("aside", "ok"), remember=False)
    assert chat.turns == [] and chat.last.prompt == "aside" and last_result() is chat.last
    assert chat.messages == []


def test_max_history_bounds_the_turns_sent():
    chat = Conversation(max_history=1)
    for i in range(3):
        chat.record(done(f"q{i}", f"a{i}"))
    assert [m["content"] for m in chat.messages_for("now")] == ["q2", "a2", "now"]
    chat.max_history = 0
    assert chat.messages_for("now") == [{"role": "user", "content": "now"}]
    chat.reset()
    assert len(chat) == 0 and chat.last is None


class FakeView:
    stats = True

    def __init__(self):
        self.text, self.reasoning, self.marks, self.order = "", "", [], []

    def append(self, text):
        self.text += text
        self.order.append(("text", text))

    def reason(self, text):
        self.reasoning += text
        self.order.append(("reasoning", text))

    def finish(self, mark="", stats=""):
        self.marks.append((mark, stats))


async def events(*items, fail=None):
    for item in items:
        yield Text(item) if isinstance(item, str) else item
        await asyncio.sleep(0)
    if fail:
        raise fail


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


async def test_stream_into_fills_the_answer_and_finishes_once():
    view, answer = FakeView(), Answer("q", "P", "m")
    got = await stream_into(events("a", "b"), view, answer, clock=Clock())
    assert got is answer and answer.text == "ab" and answer.status == "complete"
    assert view.marks == [("", "m · first text 1.0 s · 2.0 s in all")]


async def test_reasoning_usage_and_finish_reach_the_answer():
    view, answer = FakeView(), Answer("q", "P", "m")
    stream = events(Usage(7, 1), Reasoning("hmm "), Reasoning("so"), "Yes", Usage(None, 5),
                    Finish("length", "max_tokens"))
    await stream_into(stream, view, answer, clock=Clock())
    assert view.order == [("reasoning", "hmm "), ("reasoning", "so"), ("text", "Yes")]
    assert answer.reasoning == "hmm so" and answer.text == "Yes"
    assert answer.usage == {"input_tokens": 7, "output_tokens": 5}
    assert answer.finish_reason == "length" and answer.complete
    # clock: start 1, first reasoning 2, end 3
    assert (answer.first_token_s, answer.duration_s) == (1.0, 2.0)
    mark, stats = view.marks[0]
    assert "token limit" in mark and "--max-tokens" in mark
    assert stats == "m · first text 1.0 s · 2.0 s in all · 7 → 5 tokens · 5.0 tokens/s"


async def test_unknown_usage_stays_unknown():
    view, answer = FakeView(), Answer("q", "P", "m")
    await stream_into(events("a"), view, answer)
    assert answer.usage == {"input_tokens": None, "output_tokens": None}
    assert "tokens" not in view.marks[0][1]


async def test_a_content_filter_stop_says_so():
    view, answer = FakeView(), Answer("q", "P")
    await stream_into(events("a", Finish("content_filter")), view, answer)
    assert "content filter" in view.marks[0][0]


async def test_error_keeps_text_and_marks_it():
    view, answer = FakeView(), Answer("q", "P")
    with pytest.raises(errors.StreamCutShort):
        await stream_into(events("a", fail=errors.StreamCutShort("gone")), view, answer)
    assert view.text == "a" and view.marks == [("cut short: error below", "")]
    assert answer.status == "error" and "gone" in answer.error and answer.text == "a"


async def test_cancel_marks_interrupted_and_propagates():
    view, answer = FakeView(), Answer("q", "P")
    started = asyncio.Event()

    async def endless():
        yield Text("x")
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(stream_into(endless(), view, answer))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert view.text == "x" and view.marks == [("interrupted", "")]
    assert answer.status == "interrupted" and answer.text == "x"


# -- watching a conversation ----------------------------------------------------


class Ticks:
    """A clock the test moves, and a fake ``loop.call_later`` on it."""

    def __init__(self):
        self.now, self.pending = 0.0, []

    def __call__(self, delay=None, callback=None):
        if callback is None:  # read as a clock
            return self.now
        timer = [self.now + delay, callback, False]
        self.pending.append(timer)
        return type("Handle", (), {"cancel": lambda _self: timer.__setitem__(2, True)})()

    def advance(self, seconds):
        self.now += seconds
        for timer in [t for t in self.pending if t[0] <= self.now]:
            self.pending.remove(timer)
            if not timer[2]:
                timer[1]()


def watched(chat):
    heard = []
    chat.watch(lambda change, answer: heard.append(
        (change, None if answer is None else (answer.text, answer.reasoning, answer.status))))
    return heard


async def test_watchers_hear_an_answer_start_grow_at_most_ten_times_a_second_and_end():
    chat, ticks = Conversation(), Ticks()
    heard = watched(chat)
    answer = Answer("q", "P")
    view = chat.live(answer, Collector(), schedule=ticks, clock=ticks)
    view.start()
    assert chat.streaming is answer

    async def pieces():
        yield Reasoning("hmm ")
        for i in range(1000):  # 1,000 pieces over one second
            ticks.advance(0.001)
            yield Text(f"{i} ")

    await stream_into(pieces(), view, answer)
    chat.record(answer)
    text = "".join(f"{i} " for i in range(1000))
    changes = [change for change, _ in heard]
    assert changes[0] == "started" and changes[-1] == "ended"
    assert set(changes[1:-1]) == {"grew"} and len(changes) - 2 <= 12  # not 1,001 notices
    assert heard[1] == ("grew", ("", "hmm ", "streaming"))  # the first piece at once
    assert heard[-1] == ("ended", (text, "hmm ", "complete"))
    assert chat.streaming is None and chat.turns == [answer]


def test_the_last_piece_reaches_the_watchers_without_a_next_one():
    chat, ticks = Conversation(), Ticks()
    heard = watched(chat)
    view = chat.live(Answer("q", "P"), Collector(), schedule=ticks, clock=ticks)
    view.start()
    view.append("a")
    view.append("b")  # within the interval: held back...
    assert heard[-1] == ("grew", ("a", "", "streaming"))
    ticks.advance(0.1)  # ...until the trailing notice
    assert heard[-1] == ("grew", ("ab", "", "streaming"))
    view.append("c")
    view.finish()  # the end is told by record, not by a trailing notice
    ticks.advance(1)
    assert heard[-1] == ("grew", ("ab", "", "streaming"))


def test_without_a_timer_tick_brings_what_waits():
    chat, ticks = Conversation(), Ticks()
    heard = watched(chat)
    view = chat.live(Answer("q", "P"), Collector(), clock=ticks)
    view.start()
    view.append("a")
    view.append("b")
    view.tick()
    assert heard[-1] == ("grew", ("a", "", "streaming"))
    ticks.advance(0.1)
    view.tick()
    assert heard[-1] == ("grew", ("ab", "", "streaming"))


def test_a_failed_answer_ends_too_and_reset_is_told():
    chat = Conversation()
    heard = watched(chat)
    failed = Answer("q", "P", status="error", error="boom")
    chat.live(failed, Collector()).start()
    chat.record(failed)
    chat.record(done("other", "not live"))  # never started: nothing to tell
    chat.reset()
    assert heard == [("started", ("", "", "error")), ("ended", ("", "", "error")),
                     ("reset", None)]


def test_a_broken_watcher_breaks_neither_the_answer_nor_the_others(caplog):
    chat = Conversation()
    heard = watched(chat)

    def broken(change, answer):
        raise RuntimeError("watcher bug")

    chat.watch(broken)
    answer = Answer("q", "P")
    chat.live(answer, Collector()).start()
    assert heard == [("started", ("", "", "streaming"))]
    assert "watcher bug" in caplog.text


def test_unwatch_stops_the_notices():
    chat = Conversation()
    heard = []
    unwatch = chat.watch(lambda change, answer: heard.append(change))
    chat.reset()
    unwatch()
    unwatch()  # twice is harmless
    chat.reset()
    assert heard == ["reset"]


# -- answers over several model turns (tools) ------------------------------------

def test_a_turn_that_used_tools_enters_the_history_with_its_calls_and_results():
    from ipychat.answer import Round, ToolRun

    ok = ToolRun("c1", "lookup", {"q": "x"}, '{"q": "x"}', result="42", seconds=0.1)
    failed = ToolRun("c2", "lookup", "{bad", "{bad", error="bad arguments for lookup: ...")
    answer = done("q", "Looking.\n\nIt is 42.")
    answer.rounds = [Round("Looking.", [ok, failed]), Round("It is 42.")]
    chat = Conversation()
    chat.record(answer)
    assert chat.messages_for("next") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "c1", "name": "lookup", "arguments": '{"q": "x"}'},
            {"id": "c2", "name": "lookup", "arguments": "{bad"}]},
        {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": "42",
         "is_error": False},
        {"role": "tool", "tool_call_id": "c2", "name": "lookup",
         "content": "bad arguments for lookup: ...", "is_error": True},
        {"role": "assistant", "content": "It is 42."},
        {"role": "user", "content": "next"}]
    assert answer.tool_calls == [ok, failed] and "2 tool calls" in answer.stats()


def test_feed_joins_turns_into_paragraphs_and_adds_their_usage():
    from ipychat.events import ToolCall
    from ipychat.session import Feed

    view, answer = FakeView(), Answer("q", "P")
    feed = Feed(view, answer, Clock())
    for event in (Text("Let me look."), ToolCall("c1", "f", "{}"), Usage(10, 3)):
        feed.take(event)
    assert feed.end_round() == ("Let me look.", [ToolCall("c1", "f", "{}")])
    for event in (Usage(20, None), Text("Found"), Text(" it."), Usage(None, 4)):
        feed.take(event)
    assert feed.end_round() == ("Found it.", [])
    feed.done()
    assert answer.text == "Let me look.\n\nFound it."
    assert answer.usage == {"input_tokens": 30, "output_tokens": 7}
