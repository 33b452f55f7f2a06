import asyncio

import pytest

from ipychat import errors
from ipychat.session import Conversation, Turn, stream_into


def test_messages_carry_system_history_and_prompt():
    chat = Conversation(system="be brief")
    chat.record(Turn("one", "1", "P"))
    assert chat.messages_for("two") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"},
        {"role": "user", "content": "two"},
    ]
    assert chat.messages_for("x", use_history=False, system="") == [{"role": "user", "content": "x"}]


def test_incomplete_or_unremembered_turns_stay_out_of_history():
    chat = Conversation()
    chat.record(Turn("cut", "par", "P", complete=False))
    chat.record(Turn("aside", "ok", "P"), remember=False)
    assert chat.turns == [] and chat.last.prompt == "aside"
    assert chat.messages == []


def test_max_history_bounds_the_turns_sent():
    chat = Conversation(max_history=1)
    for i in range(3):
        chat.record(Turn(f"q{i}", f"a{i}", "P"))
    assert [m["content"] for m in chat.messages_for("now")] == ["q2", "a2", "now"]
    chat.max_history = 0
    assert chat.messages_for("now") == [{"role": "user", "content": "now"}]
    chat.reset()
    assert len(chat) == 0 and chat.last is None


class FakeView:
    def __init__(self):
        self.text, self.marks = "", []

    def append(self, text):
        self.text += text

    def finish(self, mark=""):
        self.marks.append(mark)


async def chunks(*parts, fail=None):
    for part in parts:
        yield part
        await asyncio.sleep(0)
    if fail:
        raise fail


async def test_stream_into_returns_text_and_finishes_once():
    view = FakeView()
    assert await stream_into(chunks("a", "b"), view) == "ab"
    assert view.marks == [""]


async def test_error_keeps_text_and_marks_it():
    view = FakeView()
    with pytest.raises(errors.StreamCutShort):
        await stream_into(chunks("a", fail=errors.StreamCutShort("gone")), view)
    assert view.text == "a" and view.marks == ["cut short: error below"]


async def test_cancel_marks_interrupted_and_propagates():
    view = FakeView()
    started = asyncio.Event()

    async def endless():
        yield "x"
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(stream_into(endless(), view))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert view.text == "x" and view.marks == ["interrupted"]
