"""Reasoning, usage and finish reasons through %%chat in a real kernel, for
every provider family, against the built-in emulator: the thinking shows
live before the answer, folds once the answer starts, never goes back to the
model, and ``last_result()`` / ``%chat last`` hold what the server reported."""

import ast
import json

import pytest

from ipychat.emulator import base_url_for
from ipychat.emulator.reply import reasoning_text
from tests.support.kernel import loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]
KEY_ENV, FAKE_KEY = "EMULATOR_TEST_KEY", "sk-emulator-test-0123456789"


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel(**{KEY_ENV: FAKE_KEY}) as k:
        yield k


@pytest.fixture(autouse=True)
def fresh(kernel, emulator):
    kernel.run("%chat reset")
    emulator.reset()


def last_result(kernel) -> dict:
    """``vars(ipychat.last_result())`` in the kernel."""
    kernel.run("import ipychat")
    return json.loads(ast.literal_eval(kernel.value(
        "__import__('json').dumps(vars(ipychat.last_result()))")))


FAMILIES = {
    "openai reasoning_content": ("openai", "-m emulator", ""),
    "openai reasoning": ("openai", "-m emulator", "think_form=reasoning"),
    "openai think tags": ("openai", "-m emulator", "think_form=tags split_tags"),
    "anthropic": ("anthropic", f"--api-key-env {KEY_ENV}", ""),
    "ollama": ("ollama", "", ""),
}


def chat_cell(emulator, family, question, extra=""):
    provider, flags, form = FAMILIES[family]
    url = base_url_for(provider, emulator.url)
    return (f"%%chat -p {provider} --base-url {url} {flags} {extra}\n"
            f"{question} [[emulator reasoning=40 delay=0.01 {form}]]")


@pytest.mark.parametrize("family", FAMILIES)
def test_thinking_shows_live_then_the_answer_and_stays_out_of_the_history(
        kernel, emulator, family):
    run = kernel.run(chat_cell(emulator, family, "Why is the sky blue?"))
    assert run.reply["content"]["status"] == "ok", run.errors
    shown = [m["content"]["data"].get("text/markdown", "") for m in run.updates]
    thinking = [s for s in shown if s.startswith("<details open><summary>Thinking…")]
    assert thinking, shown[:3]  # the reader saw it think before the answer came
    assert all("</details>\n\n" == s[-len("</details>\n\n"):] for s in thinking)
    final = run.last_text("text/markdown")
    assert final.startswith("<details><summary>Reasoning (40 words)</summary>")
    assert reasoning_text(40).split()[-1] in final
    result = last_result(kernel)
    assert result["reasoning"].split() == reasoning_text(40).split()
    assert result["text"] and result["text"] not in result["reasoning"]
    assert result["finish_reason"] == "stop" and result["status"] == "complete"
    assert final.split("</details>\n\n", 1)[1].startswith(result["text"][:20])
    # The next question sends the answer back, never the thinking.
    kernel.run(chat_cell(emulator, family, "And at sunset?"))
    sent = json.loads(emulator.requests[-1].body)["messages"]
    assert sent[1] == {"role": "assistant", "content": result["text"]}
    assert "Let me think" not in json.dumps(sent) and "<think>" not in json.dumps(sent)


def test_usage_and_token_limit_reach_last_result_and_the_mark(kernel, emulator):
    run = kernel.run(chat_cell(emulator, "openai reasoning_content", "Tell a story.",
                               "--max-tokens 45"))
    final = run.last_text("text/markdown")
    assert "*(stopped at the token limit: raise it with --max-tokens)*" in final
    assert "tokens" in final.rsplit("\n\n", 1)[1]  # the stats line names the tokens
    result = last_result(kernel)
    assert result["usage"]["output_tokens"] == 45 and result["usage"]["input_tokens"] > 0
    assert result["finish_reason"] == "length" and result["status"] == "complete"
    assert 0 <= result["first_token_s"] <= result["duration_s"]
    shown = kernel.run("%chat last").last_text()
    assert "finish reason: length" in shown and "output tokens: 45" in shown


def test_a_token_limited_answer_is_still_history(kernel, emulator):
    kernel.run(chat_cell(emulator, "ollama", "Tell a story.", "--max-tokens 45"))
    kernel.run(chat_cell(emulator, "ollama", "Go on."))
    sent = json.loads(emulator.requests[-1].body)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def test_no_stats_and_hidden_reasoning(kernel, emulator):
    kernel.run("%config ChatMagics.reasoning = 'hidden'")
    try:
        run = kernel.run(chat_cell(emulator, "ollama", "Why?", "--no-stats"))
    finally:
        kernel.run("%config ChatMagics.reasoning = 'collapsed'")
    shown = [m["content"]["data"].get("text/markdown", "") for m in run.updates]
    assert any(s.startswith("*Thinking… ") for s in shown)
    final = run.last_text("text/markdown")
    assert "details" not in final and "Let me think" not in final
    assert "in all" not in final  # no stats line
