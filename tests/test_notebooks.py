"""The demo notebooks: committed clean, and each runs top to bottom offline.

Every notebook is executed with nbclient in a temporary copy of notebooks/,
by a kernel running this interpreter, with demo mode on and no API keys, as
on Binder. nbclient raises on the first cell that errors; the checks below
then compare a few outputs with the emulator's exact, deterministic text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from ipychat.emulator.reply import reply_text
from ipychat.emulator.tooluse import Result
from ipychat.targets import EMULATOR_NOTE
from tests.support.kernel import this_checkout

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ["01-quickstart.ipynb", "02-providers.ipynb", "03-panel.ipynb",
            "04-write-a-provider.ipynb", "05-notebook-context.ipynb", "06-log-and-replay.ipynb",
            "07-tools.ipynb"]
SPEC_NAME = "ipychat-notebooks"
#: Variables that would send a notebook to a real service or change its defaults.
UNSET = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENASSISTANT_SESSION_TOKEN",
         "IPYCHAT_PROVIDER", "IPYCHAT_MODEL", "IPYCHAT_REPLAY", "IPYCHAT_LOG")
CELL_TIMEOUT = 60
WIDGET = "application/vnd.jupyter.widget-view+json"


# -- helpers (test_binder.py uses them too) -------------------------------------

def kernel_spec_dir(python: str, root: Path) -> Path:
    """A kernelspec directory whose kernel runs ``python``."""
    spec = root / SPEC_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "ipychat notebooks", "language": "python"}))
    return root


def offline_env(base: Dict[str, str] | None = None) -> Dict[str, str]:
    """``base`` (default: this process's environment) as Binder has it: demo, no keys."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in UNSET}
    env["IPYCHAT_DEMO"] = "1"
    return this_checkout(env)


def execute_notebook(path: Path, python: str, spec_root: Path, env: Dict[str, str]):
    """Run the notebook at ``path`` in its own directory; return it with outputs.

    Raises nbclient's ``CellExecutionError`` on the first cell that fails.
    """
    nb = nbformat.read(str(path), as_version=4)
    km = KernelManager(kernel_name=SPEC_NAME,
                       kernel_spec_manager=KernelSpecManager(
                           kernel_dirs=[str(kernel_spec_dir(python, spec_root))]))
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, kernel_name=SPEC_NAME,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env=env)
    finally:
        if km.has_kernel:  # nbclient leaves a kernel it did not create running
            km.shutdown_kernel(now=True)
    return nb


def cell(nb, cell_id: str):
    (found,) = [c for c in nb.cells if c.get("id") == cell_id]
    return found


def shown(nb, cell_id: str, mime: str = "text/plain", stats: bool = False) -> List[str]:
    """The ``mime`` data of every display and result output of a cell (an answer's
    stats line, whose times vary, cut off unless ``stats``)."""
    found = [o["data"][mime] for o in cell(nb, cell_id).outputs
             if o.output_type in ("display_data", "execute_result") and mime in o["data"]]
    return found if stats else [STATS_LINE.sub("", text) if isinstance(text, str) else text
                                for text in found]


#: The stats line under an answer: "*model · first text 8 ms · 1.1 s in all ...*".
STATS_LINE = re.compile(r"\n\n\*[^\n]* · [^\n]*\bin all\b[^\n]*\*\Z")


def printed(nb, cell_id: str) -> str:
    return "".join(o.text for o in cell(nb, cell_id).outputs
                   if o.output_type == "stream" and o.name == "stdout")


def emulator_answer(protocol: str, question: str, model, count: int = 1) -> str:
    """The emulator's exact text for ``question`` after ``count - 1`` earlier messages."""
    earlier = [{"role": "user", "content": "earlier"}] * (count - 1)
    return reply_text(protocol, [*earlier, {"role": "user", "content": question}], model)


def demo(text: str) -> str:
    return f"{EMULATOR_NOTE}\n\n{text}"


# -- the committed files ------------------------------------------------------------

def test_the_demo_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_valid_and_has_no_outputs(name):
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"  # Binder's default kernel
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for c in code:
        assert c.outputs == [], f"{name}: cell {c.id} has outputs"
        assert c.execution_count is None, f"{name}: cell {c.id} has an execution count"


# -- executing them -------------------------------------------------------------------

@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """``executed(name)``: the notebook run once in a copy of notebooks/ (cached);
    ``executed(name, replay="only")`` a second run, replayed from the log of the first."""
    work = tmp_path_factory.mktemp("notebooks") / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    specs = tmp_path_factory.mktemp("kernels")
    env = {**offline_env(), "IPYCHAT_HOME": str(work.parent / "ipychat-home")}
    done = {}

    def run(name: str, replay: str = ""):
        if replay:
            run(name)  # the recording run comes first
        if (name, replay) not in done:  # a failure is kept too: one run each, however it ends
            run_env = {**env, "IPYCHAT_REPLAY": replay} if replay else env
            try:
                done[name, replay] = execute_notebook(work / name, sys.executable, specs, run_env)
            except Exception as err:
                done[name, replay] = err
        if isinstance(done[name, replay], Exception):
            raise done[name, replay]
        return done[name, replay]

    return run


def runs_notebooks(test):
    """Mark a test that executes notebooks (each start a kernel)."""
    return pytest.mark.kernel(pytest.mark.timeout(180)(test))


@pytest.mark.parametrize("name", EXPECTED)
@runs_notebooks
def test_notebook_runs_top_to_bottom_without_errors(executed, name):
    nb = executed(name)
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.execution_count is not None, f"cell {c.id} did not run"
            if "raises-exception" not in c.metadata.get("tags", []):  # an error on purpose
                assert not [o for o in c.outputs if o.output_type == "error"]


@runs_notebooks
def test_quickstart_answers_from_the_emulator_with_history(executed):
    nb = executed("01-quickstart.ipynb")
    first = emulator_answer("openai", "Explain list comprehensions in two sentences.",
                            "gpt-4o-mini")
    assert shown(nb, "zero-config") == [demo(first)]
    (with_stats,) = shown(nb, "zero-config", stats=True)
    assert re.search(r"\n\n\*gpt-4o-mini · first text \d+ ms · [\d.]+ (ms|s) in all · "
                     r"\d+ → \d+ tokens · [\d.]+ tokens/s\*\Z", with_stats), with_stats
    (oa,) = shown(nb, "openassistant")
    assert oa.startswith(demo("**Emulator answer (openassistant)**"))
    assert "- messages received: 3\n" in oa  # the first turn went along
    (history,) = shown(nb, "history")
    assert history.startswith(f"user: Explain list comprehensions in two sentences.\n"
                              f"assistant (OpenAIChat): {first}\n"
                              f"user: How do generator expressions differ from them?\n"
                              f"assistant (OpenAssistant): **Emulator answer (openassistant)**")


@runs_notebooks
def test_quickstart_out_interpolation_and_stop(executed):
    nb = executed("01-quickstart.ipynb")
    answer = emulator_answer("openai", "Give me one example of a list comprehension.",
                             "gpt-4o-mini", count=5)
    assert shown(nb, "out") == [demo(answer)]
    assert printed(nb, "use-out") == (f"{len(answer)} characters; the first line is:\n"
                                      f"{answer.splitlines()[0]}\n")
    question = ("Explain decorators to a beginner. "
                "Keep {these braces} and {unknown_name} as they are.")
    assert shown(nb, "interpolate") == [demo(emulator_answer("openai", question,
                                                               "gpt-4o-mini"))]
    (thought,) = shown(nb, "reasoning", "text/markdown")
    assert thought.startswith(EMULATOR_NOTE + "\n\n<details><summary>Reasoning (12 words)"
                              "</summary>\n\n> Let me")
    assert "**Emulator answer (openai)**" in thought
    assert printed(nb, "last-result").startswith("stop {'input_tokens': ")
    (table,) = shown(nb, "providers")
    assert "openassistant  OA_SFT_Llama_30B_6  built-in emulator (demo)" in table
    (stopped,) = shown(nb, "stop")
    assert stopped.startswith("Stopped ") and stopped.endswith(" background answer(s).")


@runs_notebooks
def test_providers_notebook_reaches_each_protocol(executed):
    nb = executed("02-providers.ipynb")
    question = "What is a Python wheel?"
    models = {"cromicle": None, "vitalentum": None, "lockchat": "gpt-4",
              "openassistant": "OA_SFT_Llama_30B_6"}
    for name, model in models.items():
        assert shown(nb, name) == [demo(emulator_answer(name, question, model))], name
    assert shown(nb, "openai-compatible") == [
        emulator_answer("openai", "Hello, OpenAI-compatible server!", "emulator")]
    assert shown(nb, "ollama") == [emulator_answer("ollama", "Hello, Ollama!", "llama3.2")]
    (anthropic,) = shown(nb, "anthropic")
    assert anthropic.startswith("**Emulator answer (anthropic)**")
    assert "> Hello, Anthropic!\n" in anthropic
    assert shown(nb, "chain") == [demo(emulator_answer("openai", "Who answers this?",
                                                        "gpt-4o-mini"))]
    assert printed(nb, "chain-python") == emulator_answer("openai", "Who answers this?",
                                                          "gpt-4o-mini")
    failed = printed(nb, "chain-fails")
    # Each is tried 3 times (2 retries) before the chain moves on.
    assert failed.startswith("every provider failed (Ollama: after 3 attempts: cannot connect "
                             "to 127.0.0.1:")
    assert "; OpenAIChat: after 3 attempts: cannot connect to 127.0.0.1:" in failed


@runs_notebooks
def test_panel_notebook_displays_the_widgets(executed):
    nb = executed("03-panel.ipynb")
    for cell_id in ("panel", "chat-panel", "own-conversation"):
        (view,) = shown(nb, cell_id, WIDGET)
        assert view["model_id"]
    (answer,) = shown(nb, "shared-cell")  # the cell that streams into the panels above
    assert answer == demo(emulator_answer(
        "openai", "What does the panel above show while this cell runs?", "gpt-4o-mini"))


@runs_notebooks
def test_written_providers_answer(executed):
    nb = executed("04-write-a-provider.ipynb")
    assert shown(nb, "use-shouter") == [
        "IS ANYBODY OUT THERE? \n\n*(model loud-1; messages so far: 1)*"]
    assert printed(nb, "python-api").startswith("HELLO THERE \n\n")
    assert shown(nb, "dotted-path") == ["Arr! Ye asked: Where be the treasure? "]


@runs_notebooks
def test_context_notebook_sends_frames_figures_and_errors(executed):
    nb = executed("05-notebook-context.ipynb")
    (frame,) = shown(nb, "ask-frame")
    assert "pandas DataFrame, 300,000 rows × 2 columns" in frame
    (figure,) = shown(nb, "ask-figure")
    assert "What does this plot show?" in figure  # the emulator quotes the text parts
    assert printed(nb, "err") == "ZeroDivisionError: division by zero\n"
    (fix,) = shown(nb, "fix")
    assert "def mean(values):" in fix and "ZeroDivisionError" in fix
    (context,) = shown(nb, "context")
    assert "Context: the last 3 cells run in this notebook" in context
    assert shown(nb, "code")  # streamed as usual (nbclient has no cell to insert into)


#: The line a replayed answer adds above its text.
REPLAYED = re.compile(r"\*Replayed from the log \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\): "
                      r"no request was sent\.\*\n\n")


@runs_notebooks
def test_log_notebook_logs_searches_exports_and_replays(executed):
    nb = executed("06-log-and-replay.ipynb")
    first = emulator_answer("openai", "What is a Python virtual environment?", "gpt-4o-mini")
    assert shown(nb, "ask") == [demo(first)]
    (table,) = shown(nb, "log")
    assert table.splitlines()[0].split()[:4] == ["time", "(UTC)", "notebook", "provider/model"]
    assert "OpenAIChat/gpt-4o-mini" in table and len(table.splitlines()) >= 3
    (found,) = shown(nb, "search")
    assert len(found.splitlines()) == 2  # the head and the first answer
    assert printed(nb, "python-api").count(" OpenAIChat gpt-4o-mini complete ") == 2
    (wrote,) = shown(nb, "export")
    assert re.fullmatch(r"Wrote \d+ answer\(s\) to my-answers\.md\.", wrote)
    (replayed,) = shown(nb, "replayed")
    assert REPLAYED.sub("", replayed) == demo(first) and replayed != demo(first)
    (resumed,) = shown(nb, "resume")
    assert re.match(r"Resumed the last conversation of \S+\.json: 2 turn\(s\) \(the "
                    r"conversation this kernel already has\), the last from ", resumed), resumed


@runs_notebooks
def test_log_notebook_runs_again_with_replay_only(executed):
    """CI's case: after a recording run, IPYCHAT_REPLAY=only in a fresh kernel."""
    live = executed("06-log-and-replay.ipynb")
    nb = executed("06-log-and-replay.ipynb", replay="only")
    for c in nb.cells:
        if c.cell_type == "code":
            assert not [o for o in c.outputs if o.output_type == "error"], c.id
    for cell_id in ("ask", "ask-more", "replayed"):
        (now,), (was,) = shown(nb, cell_id, stats=True), shown(live, cell_id, stats=True)
        assert len(REPLAYED.findall(now)) == 1, cell_id
        assert REPLAYED.sub("", now) == REPLAYED.sub("", was), cell_id
    (pinned,) = shown(nb, "replay-off")
    assert pinned.endswith("(IPYCHAT_REPLAY=only holds for this run)")
@runs_notebooks
def test_tools_notebook_runs_the_functions_offline(executed):
    nb = executed("07-tools.ipynb")
    (schema,) = shown(nb, "schema")
    assert "'description': \"Today's weather in a city.\"" in schema
    assert "'enum': ['C', 'F'], 'default': 'C'" in schema
    question = "What's the weather in Paris? [[emulator call=get_weather args='{\"city\": \"Paris\"}']]"
    result = '{"city": "Paris", "temp": 21, "sky": "clear"}'
    # The question, the turn that called, the result: three messages for the second turn.
    answer = reply_text("openai", [{"role": "user", "content": question}, {}, {}],
                        "gpt-4o-mini", [Result("get_weather", result)])
    assert shown(nb, "weather") == [demo(answer) + f'\n\n[tool] get_weather(city="Paris") → '
                                    f"{result}"]
    assert shown(nb, "called") == ["[('get_weather', 'Paris', 'C')]"]
    (two,) = shown(nb, "two-calls", "text/markdown")
    assert ("<details><summary>2 tool calls</summary>\n\n```text\n"
            'get_weather(city="Oslo", unit="F") → {"city": "Oslo", "temp": 70, "sky": "clear"}\n'
            "stock(item=\"umbrella\") ✗ KeyError: 'umbrella'\n```\n\n</details>") in two
    assert "> stock: Error: KeyError: 'umbrella'\n" in two  # what the model was sent
    assert printed(nb, "last-result") == (
        "get_weather {'city': 'Oslo', 'unit': 'F'} {\"city\": \"Oslo\", \"temp\": 70, "
        "\"sky\": \"clear\"}\nstock {'item': 'umbrella'} KeyError: 'umbrella'\n")
    (history,) = shown(nb, "history")
    assert f'\ntool: get_weather(city="Paris") → {result}\nassistant (OpenAIChat): ' in history
    (bad,) = shown(nb, "bad-args")
    assert bad.endswith('[tool] get_weather(town="Paris") ✗ bad arguments for get_weather')
    assert "'town' is not a parameter of get_weather" in bad  # the model got the reason
    (limit,) = shown(nb, "limit")
    lima = '[tool] get_weather(city="Lima") → {"city": "Lima", "temp": 21, "sky": "clear"}'
    assert limit == demo(f"{lima}\n{lima}\n\n*(stopped after 2 tool rounds: raise the limit "
                         "with --max-tool-rounds)*")
    (again,) = shown(nb, "use-ask")
    assert again.endswith('[tool] get_weather(city="Pune") → {"city": "Pune", "temp": 21, '
                          '"sky": "clear"}')
    assert shown(nb, "no-tools") == ["Defaults: provider=(zero-config)"]
    (panel,) = shown(nb, "panel-tools", WIDGET)  # a panel that offers the same tools
    assert panel["model_id"]
