"""%%chat --tools through a real ipykernel and the emulator: the functions run
in the kernel with the model's arguments, their lines and the final answer
show in the one output, the history keeps them; Interrupt inside a slow
tool, plain or async, ends the cell in one line and the kernel goes on."""

import time

import pytest

from tests.support.kernel import loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

TOOLS = '''
import asyncio, time
seen = []

def get_weather(city: str, days: int = 1) -> dict:
    """Weather for a city."""
    seen.append((city, days))
    return {"city": city, "temp": 21}

def nap(seconds: float):
    time.sleep(seconds)  # one blocking call
    return "woke up"

async def wait(seconds: float):
    await asyncio.sleep(seconds)
    return "waited"
'''


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel("%config ChatMagics.stats = False", TOOLS) as k:
        yield k


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%chat reset\nseen.clear()")


def test_the_kernel_runs_this_checkout(kernel):
    import ipychat

    assert kernel.value("__import__('ipychat').__file__") == repr(ipychat.__file__)


def one_line_error(run):
    (error,) = run.errors
    assert len(error["content"]["traceback"]) == 1, error["content"]["traceback"]
    return error["content"]["traceback"][0]


@pytest.mark.parametrize("provider, base", [("openai", "/v1"), ("ollama", "/ollama"),
                                            ("anthropic", "")])
def test_the_function_runs_with_the_models_arguments_and_the_answer_follows(
        kernel, emulator, provider, base):
    key = " --api-key-env EMULATOR_KEY" if provider == "anthropic" else ""
    kernel.run("import os; os.environ['EMULATOR_KEY'] = 'sk-emulator-0123456789'")
    ask = "Weather in Paris? [[emulator call=get_weather args='{\"city\": \"Paris\", \"days\": 2}']]"
    run = kernel.run(f"%%chat -p {provider} --base-url {emulator.url}{base}{key} "
                     f"--tools get_weather -o said\n{ask}")
    assert run.reply["content"]["status"] == "ok", run.errors
    assert kernel.value("seen") == "[('Paris', 2)]"
    assert len(run.of_type("display_data")) == 1  # one output for both model turns
    final = run.last_text("text/markdown")
    assert final.startswith(f"**Emulator answer ({provider})**")
    assert '> get_weather: {"city": "Paris", "temp": 21}' in final
    assert ('<details><summary>1 tool call</summary>\n\n```text\nget_weather(city="Paris", '
            'days=2) → {"city": "Paris", "temp": 21}\n```\n\n</details>') in final
    assert kernel.value("said").startswith(repr(f"**Emulator answer ({provider})**")[:-1])
    calls = kernel.value("[(r.name, r.arguments, r.result) "
                         "for r in __import__('ipychat').last_result().tool_calls]")
    assert calls == "[('get_weather', {'city': 'Paris', 'days': 2}, " \
                    "'{\"city\": \"Paris\", \"temp\": 21}')]"
    history = kernel.run("%chat history").last_text()
    assert 'tool: get_weather(city="Paris", days=2) → {"city": "Paris", "temp": 21}' in history
    follow = kernel.run(f"%%chat -p {provider} --base-url {emulator.url}{base}{key}\nThanks!")
    assert follow.reply["content"]["status"] == "ok", follow.errors  # the history pairs up


@pytest.mark.parametrize("tool, seconds", [("nap", 30), ("wait", 30)])
def test_interrupt_inside_a_slow_tool_ends_the_cell_in_one_line(kernel, emulator, tool,
                                                                seconds):
    interrupted = []

    def interrupt_when_running(msg):
        text = msg["content"].get("data", {}).get("text/plain", "")
        if f"{tool}(seconds={seconds}) …" in text and not interrupted:
            interrupted.append(time.monotonic())
            kernel.interrupt()

    ask = f"Take your time. [[emulator call={tool} args='{{\"seconds\": {seconds}}}']]"
    run = kernel.run(f"%%chat -p openai --base-url {emulator.url}/v1 --tools {tool}\n{ask}",
                     on_message=interrupt_when_running)
    assert interrupted, "the call line never showed"
    assert time.monotonic() - interrupted[0] < 10  # not the tool's 30 s
    assert "interrupted" in one_line_error(run)
    shown = run.last_text()
    assert shown.endswith(f"[tool] {tool}(seconds={seconds}) ✗ interrupted\n\n*(interrupted)*")
    assert kernel.value("1 + 1") == "2"
    assert "No history yet." in kernel.run("%chat history").last_text()
    status = kernel.value("__import__('ipychat').last_result().status")
    assert status == "'interrupted'"


def test_chat_stop_cancels_an_async_tool_of_a_background_answer(kernel, emulator):
    ask = "[[emulator call=wait args='{\"seconds\": 30}']]"
    run = kernel.run(f"%%chat -p openai --base-url {emulator.url}/v1 --tools wait --background"
                     f"\n{ask}")
    assert run.reply["content"]["status"] == "ok"
    (shown,) = run.of_type("display_data")
    display_id = shown["content"]["transient"]["display_id"]
    def running(msg):
        return (msg["msg_type"] == "update_display_data"
                and "wait(seconds=30) …" in msg["content"]["data"]["text/plain"])

    if not any(running(m) for m in run.messages):  # it may have shown before the cell ended
        kernel.listen(running)
    started = time.monotonic()
    stopped = kernel.run("%chat stop")
    assert "Stopped 1 background answer(s)." in stopped.last_text()
    final = kernel.listen(lambda m: m["msg_type"] == "update_display_data"
                          and m["content"]["data"]["text/plain"].endswith("*(interrupted)*"))
    assert final[-1]["content"]["transient"]["display_id"] == display_id
    assert "[tool] wait(seconds=30) ✗ interrupted" in final[-1]["content"]["data"]["text/plain"]
    assert time.monotonic() - started < 10
