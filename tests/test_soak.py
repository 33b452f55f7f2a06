"""Interrupt and Stop soak: 50 interrupts mid-answer in one kernel, 50 Stop
clicks in a panel. After each, the server must see the client leave; after
all of them, open file descriptors and pending tasks are back at their
baseline (measured after one warm-up turn, which opens what stays open:
the loop's self-pipe, lazily made executors...). Figures go to the
reliability report (docs/reliability.md, refreshed by
``python -m bench.reliability``; a plain test run writes nothing).
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from ipychat.emulator import EmulatorServer, base_url_for
from ipychat.panel import STOPPED, ChatPanel
from ipychat.session import Conversation
from tests.support.matrix import loaded_kernel, machine, markdown_table, until, write_section

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ROUNDS = 50
HOLD = "[[emulator stall_mid=120]]"  # one piece, then silence until the client leaves
WAIT = 20  # seconds; a bound, never a pause
FIRST_PIECE = "**Emulator "
# Open fds and pending tasks in the kernel. IPython's history thread opens and
# closes its SQLite journal at its own pace: files under its directory do not count.
COUNTS = """
import asyncio, os
from IPython.paths import get_ipython_dir

def _fd_links():
    for fd in os.listdir('/proc/self/fd'):
        try:
            yield os.readlink(f'/proc/self/fd/{fd}')
        except OSError:  # the listing's own fd, closed already
            pass

print(sum(not link.startswith(get_ipython_dir()) for link in _fd_links()),
      len(asyncio.all_tasks()))
"""
FIGURES = {}


@pytest.fixture(scope="module")
def emulator():
    with EmulatorServer(delay=0) as server:
        yield server
    if len(FIGURES) == 2:
        write_section("soak", soak_section())


def soak_section() -> str:
    head = ["soak", "rounds", "disconnects seen", "fds: baseline → after",
            "tasks: baseline → after", "seconds per round"]
    rows = [[name, *values] for name, values in sorted(FIGURES.items())]
    return (f"## Interrupt and Stop soak\n\nMeasured on {machine()}.\n\n"
            + markdown_table(head, rows))


def not_above(counts, baseline) -> bool:
    return all(now <= then for now, then in zip(counts, baseline))


def record(name: str, seen: int, before, after, seconds: float) -> None:
    FIGURES[name] = [str(ROUNDS), f"{seen}/{ROUNDS}", f"{before[0]} → {after[0]}",
                     f"{before[1]} → {after[1]}", f"{seconds / ROUNDS:.3f}"]


# -- interrupts in a kernel ---------------------------------------------------------


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel() as k:
        yield k


def kernel_counts(kernel) -> tuple:
    fds, tasks = kernel.run(COUNTS).stdout.split()
    return int(fds), int(tasks)


def interrupt_mid_answer(kernel, cell: str) -> None:
    sent = []

    def on_first_update(msg):
        if msg["msg_type"] == "update_display_data" and not sent:
            sent.append(msg)
            kernel.interrupt()

    run = kernel.run(cell, timeout=WAIT, on_message=on_first_update)
    (error,) = run.errors
    assert sent and error["content"]["ename"] == "Interrupted", error["content"]["evalue"]
    assert run.last_text().endswith("*(interrupted)*")


@pytest.mark.kernel
def test_fifty_interrupts_mid_answer_leave_nothing_behind(kernel, emulator):
    url = base_url_for("cromicle", emulator.url)
    cell = f"%%chat -p cromicle --base-url {url} --no-history\nhold {HOLD}"
    assert kernel.run(f"%%chat -p cromicle --base-url {url}\nwarm up").errors == []
    interrupt_mid_answer(kernel, cell)
    emulator.reset()
    before = kernel_counts(kernel)
    started = time.monotonic()
    for i in range(ROUNDS):
        interrupt_mid_answer(kernel, cell)
        assert emulator.wait_for(lambda: len(emulator.requests) == i + 1
                                 and emulator.requests[i].disconnected, WAIT), i
    seconds = time.monotonic() - started
    after = kernel_counts(kernel)
    seen = sum(r.disconnected for r in emulator.requests)
    record("50 interrupts, %%chat in a kernel", seen, before, after, seconds)
    assert seen == ROUNDS
    assert not_above(after, before), (before, after)
    assert kernel.value("1 + 1") == "2"


# -- Stop clicks in a panel ---------------------------------------------------------


def process_counts() -> tuple:
    return len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks())


async def stop_mid_answer(panel: ChatPanel, prompt: str) -> None:
    assert panel.ask(prompt)
    # The first piece of this answer (the last one, stopped, shows until it starts).
    shown = lambda: (panel.last_answer is not None and panel.last_answer.prompt == prompt
                     and panel.last_answer.text == FIRST_PIECE)
    assert await until(shown, WAIT)
    panel.stop()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(panel.task, WAIT)
    assert panel.status_text == STOPPED
    assert panel.messages()[-1]["mark"] == "interrupted"


async def test_fifty_stop_clicks_leave_nothing_behind(emulator):
    panel = ChatPanel(conversation=Conversation(), provider="cromicle", demo=False)
    panel.base_url = base_url_for("cromicle", emulator.url)
    await stop_mid_answer(panel, f"warm up {HOLD}")
    emulator.reset()
    before = process_counts()
    started = time.monotonic()
    for i in range(ROUNDS):
        await stop_mid_answer(panel, f"stop {i} {HOLD}")
        seen = lambda: len(emulator.requests) == i + 1 and emulator.requests[i].disconnected
        assert await asyncio.to_thread(emulator.wait_for, seen, WAIT), i
    seconds = time.monotonic() - started
    settled = await until(lambda: not_above(process_counts(), before), WAIT)
    after = process_counts()
    seen = sum(r.disconnected for r in emulator.requests)
    record("50 Stop clicks, ChatPanel", seen, before, after, seconds)
    assert seen == ROUNDS and panel.conversation.turns == []
    assert settled, (before, after)
