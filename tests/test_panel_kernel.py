"""The panel in a real kernel, through real comm messages: what a page sends
reaches it, and a ``%%chat`` cell's answer reaches the page while it streams.

The kernel answers from ipychat's built-in emulator (demo mode), on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest

from ipychat.panel import STOPPED
from tests.support.kernel import loaded_kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]
SLOW = "[[emulator delay=0.02 chunks=30]]"


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel(IPYCHAT_DEMO="1") as k:
        yield k


@pytest.fixture
def panel_comm(kernel) -> str:
    """A fresh panel on the notebook's conversation, greeted by a "page"; its comm id."""
    kernel.run("%chat reset")
    ran = kernel.run("from ipychat import ChatPanel\npanel = ChatPanel(provider='cromicle')\n"
                     "print(panel.comm.comm_id)")
    comm_id = ran.stdout.strip()
    kernel.comm_send(comm_id, {"kind": "hello"})
    kernel.listen(lambda m: custom(m, comm_id, "sync"))
    return comm_id


def custom(msg: dict, comm_id: str, kind: str = None):
    """The panel's custom message in ``msg``, if it is one (of ``kind``)."""
    if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != comm_id:
        return None
    data = msg["content"]["data"]
    if data.get("method") != "custom" or (kind and data["content"]["kind"] != kind):
        return None
    return data["content"]


def test_a_chat_cell_streams_into_the_panel_while_it_runs(kernel, panel_comm):
    ran = kernel.run(f"%%chat -p cromicle\nHello from a cell {SLOW}")
    order = []  # what the cell's execution sent, in order: the panel's upserts and the output's
    for msg in ran.messages:
        found = custom(msg, panel_comm, "upsert")
        if found:
            order.append(("panel", found["message"]))
        elif msg["msg_type"] in ("display_data", "update_display_data"):
            order.append(("cell", None))
    panel = [m for kind, m in order if kind == "panel"]
    assert panel[0]["role"] == "user" and panel[0]["text"].startswith("Hello from a cell")
    answers = [m for m in panel if m["role"] == "assistant"]
    streaming = [m for m in answers if m["state"] == "streaming"]
    assert len(streaming) >= 3  # it grew in the panel while the cell ran, not once at the end
    assert answers[-1]["state"] == "complete" and "tok" in answers[-1]["text"]
    # Live: the panel saw text before the cell's output had its last update.
    first_text = next(i for i, (kind, m) in enumerate(order)
                      if kind == "panel" and m["role"] == "assistant" and "".join(m["parts"]))
    last_cell = max(i for i, (kind, _) in enumerate(order) if kind == "cell")
    assert first_text < last_cell
    # Each update carried that one message: the question was sent once.
    assert sum(1 for m in panel if m["role"] == "user") == 1


def test_a_question_from_the_page_is_answered_through_the_comm(kernel, panel_comm):
    asked = kernel.comm_send(panel_comm, {"kind": "ask", "text": f"From the page {SLOW}"})
    seen = kernel.listen(lambda m: (custom(m, panel_comm, "upsert") or {}).get(
        "message", {}).get("state") == "complete")
    mine = [custom(m, panel_comm) for m in seen if m["parent_header"].get("msg_id") == asked]
    assert {"kind": "asked", "ok": True} in mine
    answers = [c["message"] for c in mine if c and c["kind"] == "upsert"
               and c["message"]["role"] == "assistant"]
    assert answers[-1]["state"] == "complete" and "tok" in answers[-1]["text"]
    history = kernel.value("[t.prompt for t in panel.conversation.turns]")
    assert history == repr([f"From the page {SLOW}"])


# -- tools ----------------------------------------------------------------------

TOOLS = '''
import time
ran = []

def get_weather(city: str) -> dict:
    """Today's weather in a city."""
    ran.append(city)
    return {"city": city, "temp": 21}

def slow(seconds: int) -> str:
    """Takes a while."""
    time.sleep(seconds)
    return "done"
'''


def call(tool: str, args: str) -> str:
    return f"[[emulator call={tool} args='{args}']]"


def calls_of(msgs, comm_id):
    """The call lines of each panel upsert that carried them, in order."""
    found = [custom(m, comm_id, "upsert") for m in msgs]
    return [c["message"]["calls"] for c in found if c and "calls" in c["message"]]


def test_a_chat_cell_with_tools_shows_its_calls_in_the_panel(kernel, panel_comm):
    kernel.run(TOOLS)
    ran = kernel.run("%%chat -p openai --tools get_weather\nWeather in Oslo? "
                     + call("get_weather", '{"city": "Oslo"}'))
    line = 'get_weather(city="Oslo")'
    assert calls_of(ran.messages, panel_comm) == [
        [], [f"{line} …"], [f'{line} → {{"city": "Oslo", "temp": 21}}']]
    assert kernel.value("ran") == "['Oslo']"


def test_a_panel_with_tools_runs_them_and_interrupt_stops_a_plain_one(kernel):
    kernel.run("%chat reset")
    kernel.run(TOOLS)
    comm_id = kernel.run("from ipychat import ChatPanel\n"
                         "tooled = ChatPanel(provider='openai', tools=[get_weather, slow])\n"
                         "print(tooled.comm.comm_id)").stdout.strip()
    kernel.comm_send(comm_id, {"kind": "hello"})
    kernel.listen(lambda m: custom(m, comm_id, "sync"))
    kernel.comm_send(comm_id, {"kind": "ask",
                               "text": "Paris? " + call("get_weather", '{"city": "Paris"}')})
    seen = kernel.listen(lambda m: (custom(m, comm_id, "upsert") or {}).get(
        "message", {}).get("state") == "complete")
    assert calls_of(seen, comm_id)[-1] == ['get_weather(city="Paris") → {"city": "Paris", '
                                           '"temp": 21}']
    assert kernel.value("ran") == "['Paris']"

    kernel.comm_send(comm_id, {"kind": "ask", "text": "Wait. " + call("slow", '{"seconds": 30}')})
    kernel.listen(lambda m: ["slow(seconds=30) …"] in calls_of([m], comm_id))
    asked = time.monotonic()
    kernel.interrupt()
    seen = kernel.listen(lambda m: (custom(m, comm_id, "upsert") or {}).get(
        "message", {}).get("state") == "interrupted")
    assert time.monotonic() - asked < 10  # not the tool's 30 s
    assert calls_of(seen, comm_id)[-1] == ["slow(seconds=30) ✗ interrupted"]
    assert kernel.value("tooled.status") == repr(STOPPED)
    assert kernel.value("len(tooled.conversation.turns)") == "1"  # the cut answer stays out
