"""Retries through %%chat in a real kernel, against the emulator: the live
output says what it waits for and the answer replaces that line; Interrupt
and %chat stop end a wait at once; --retries and ChatMagics.max_retries."""

import time

import pytest

from ipychat.emulator import base_url_for
from tests.support.kernel import loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel() as k:
        yield k


@pytest.fixture(autouse=True)
def fresh(kernel, emulator):
    kernel.run(f"%chat use openai --base-url {base_url_for('openai', emulator.url)} "
               "-m emulator --no-stats")
    kernel.run("%chat reset\n%config ChatMagics.max_retries = 2")
    emulator.reset()


def shown(run) -> list:
    return [m["content"]["data"]["text/markdown"]
            for m in run.of_type("display_data", "update_display_data")]


def test_the_retry_line_shows_while_waiting_then_the_answer_replaces_it(kernel, emulator):
    run = kernel.run("%%chat\n[[emulator status=429 retry_after_ms=400 times=1]] Hello?")
    assert run.reply["content"]["status"] == "ok"
    assert "*HTTP 429, retrying in 400 ms (1 of 2)*" in shown(run)
    final = run.last_text("text/markdown")
    assert final.startswith("**Emulator answer (openai)**") and "retrying" not in final
    assert len(emulator.requests) == 2


def test_spent_retries_are_one_line_naming_the_attempts(kernel, emulator):
    run = kernel.run("%%chat\n[[emulator status=503 retry_after_ms=10]] Hello?")
    (line,) = run.errors[0]["content"]["traceback"]
    assert "after 3 attempts: HTTP 503" in line and len(emulator.requests) == 3
    assert run.last_text("text/markdown").strip() == "*(no answer: error below)*"


@pytest.mark.parametrize("option, requests", [("--retries 0", 1), ("--retries 1", 2)])
def test_retries_per_cell(kernel, emulator, option, requests):
    kernel.run(f"%%chat {option}\n[[emulator status=500 retry_after_ms=10]] Hello?")
    assert len(emulator.requests) == requests


def test_max_retries_setting(kernel, emulator):
    kernel.run("%config ChatMagics.max_retries = 0")
    kernel.run("%%chat\n[[emulator status=500]] Hello?")
    assert len(emulator.requests) == 1


def test_interrupt_ends_a_wait_at_once(kernel, emulator):
    interrupted = []

    def on_message(msg):
        data = msg["content"].get("data", {})
        if "retrying in 30 s" in data.get("text/markdown", "") and not interrupted:
            interrupted.append(time.monotonic())
            kernel.interrupt()

    started = time.monotonic()
    run = kernel.run("%%chat\n[[emulator status=429 retry_after=30 times=1]] Hello?",
                     timeout=20, on_message=on_message)
    assert interrupted and time.monotonic() - interrupted[0] < 5
    (line,) = run.errors[0]["content"]["traceback"]
    assert "interrupted" in line and len(emulator.requests) == 1
    assert time.monotonic() - started < 15


def test_chat_stop_ends_a_background_wait(kernel, emulator):
    kernel.run("%%chat --background\n[[emulator status=429 retry_after=30 times=1]] Hello?")
    assert emulator.wait_for(lambda: len(emulator.requests) == 1, timeout=10)
    stopped = kernel.run("%chat stop")
    assert "Stopped 1 background answer(s)." in stopped.last_text()
    assert len(emulator.requests) == 1
