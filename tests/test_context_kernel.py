"""The notebook in the conversation, through a real kernel: Err[n] without
changing how errors show, %chat fix, --context, --format code as a new cell,
figures and data frames in a prompt, and secrets kept out of prompts."""

import ast
import json

import pytest
from aiohttp import web

from ipychat.emulator import base_url_for
from tests.support.kernel import loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]
FAKE_KEY = "sk-context-Very-Secret-0123456789"


@pytest.fixture(scope="module")
def kernel(emulator):
    with loaded_kernel(OPENAI_API_KEY=FAKE_KEY) as k:
        yield k


@pytest.fixture(autouse=True)
def fresh(kernel, emulator):
    kernel.run(f"%chat use openai --base-url {base_url_for('openai', emulator.url)} "
               "-m emulator --no-stats")
    kernel.run("%chat reset")
    emulator.reset()


def sent(emulator) -> list:
    """The messages of the last request the emulator saw."""
    return json.loads(emulator.requests[-1].body)["messages"]


def test_err_holds_the_error_as_plain_text_and_errors_show_as_before(kernel):
    failed = kernel.run("1 / 0")
    (error,) = failed.errors
    assert error["content"]["ename"] == "ZeroDivisionError"
    assert len(error["content"]["traceback"]) > 1  # IPython's own traceback, untouched
    text = ast.literal_eval(kernel.value("Err[max(Err)]"))
    assert text.startswith("Traceback (most recent call last):")
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "\x1b[" not in text and "interactiveshell.py" not in text
    # ipychat's own errors still show as one line.
    one = kernel.run("%%chat -p nope\nhi")
    assert len(one.errors[0]["content"]["traceback"]) == 1


def test_another_extensions_exception_handler_still_runs(kernel):
    kernel.run("seen = []\n"
               "def handler(shell, etype, evalue, tb, tb_offset=None):\n"
               "    seen.append(etype.__name__)\n"
               "get_ipython().set_custom_exc((KeyError,), handler)")
    kernel.run("{}['x']")
    assert kernel.value("seen") == "['KeyError']"
    assert "KeyError: 'x'" in ast.literal_eval(kernel.value("Err[max(Err)]"))
    kernel.run("get_ipython().set_custom_exc((), None)")


def test_unload_removes_err_and_its_hook(kernel):
    kernel.run("%unload_ext ipychat")
    try:
        assert kernel.value("'Err' in globals()") == "False"
        hooks = kernel.value("[type(c).__name__ for c in "
                             "get_ipython().events.callbacks['post_run_cell']]")
        assert "ErrorRecorder" not in hooks
    finally:
        kernel.run("%load_ext ipychat")
    assert kernel.value("'Err' in globals()") == "True"


def test_chat_fix_sends_the_failed_cell_and_its_error(kernel, emulator):
    kernel.run("def area(r):\n    return 3.14 * r ** 2\narea('two')")
    fixed = kernel.run("%chat fix")
    assert fixed.reply["content"]["status"] == "ok", fixed.errors
    question = sent(emulator)[-1]["content"]
    assert "def area(r):" in question and "TypeError" in question
    assert "**Emulator answer (openai)**" in fixed.last_text("text/markdown")


def test_chat_fix_with_nothing_to_fix_is_one_line(kernel):
    kernel.run("Err.clear()")
    run = kernel.run("%chat fix")
    (line,) = run.errors[0]["content"]["traceback"]
    assert "no failed cell to fix" in line


def test_context_sends_the_last_cells_before_the_question(kernel, emulator):
    kernel.run("values = [3, 1, 2]")
    kernel.run("sorted(values)")
    kernel.run("%%chat --context 2 --no-history\nWhat did I just do?")
    question = sent(emulator)[-1]["content"]
    context, _, asked = question.rpartition("Question:\n")
    assert asked == "What did I just do?"
    assert "values = [3, 1, 2]" in context and "sorted(values)" in context
    assert "Out [" in context and "[1, 2, 3]" in context


def code_server():
    async def handler(request):
        body = await request.json()
        answer = "Like this:\n\n```python\nprint(sorted(values))\n```\n"
        chunk = {"choices": [{"delta": {"content": answer}, "finish_reason": "stop"}]}
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
        handler.bodies.append(body)
        return response

    handler.bodies = []
    return handler


def test_format_code_puts_the_code_in_a_new_cell_and_runs_nothing(kernel, make_server):
    handler = code_server()
    server = make_server([("POST", "/v1/chat/completions", lambda r, rec: handler(r))])
    run = kernel.run(f"%%chat --format code --base-url {server.url}/v1\nSort my values.")
    payloads = run.reply["content"]["payload"]
    assert payloads == [{"source": "set_next_input", "text": "print(sorted(values))",
                         "replace": False}]
    system = handler.bodies[0]["messages"][0]
    assert system["role"] == "system" and "one Python code block" in system["content"]
    assert run.stdout == ""  # shown, not run


def test_an_interrupted_code_answer_inserts_nothing(kernel, emulator):
    run = kernel.run("%%chat --format code\n[[emulator status=500]] Sort.")
    assert run.errors and run.reply["content"]["payload"] == []


def test_a_figure_and_a_data_frame_go_into_the_prompt(kernel, emulator):
    kernel.run("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
               "import pandas as pd\n"
               "fig, ax = plt.subplots(); ax.plot([1, 2, 3])\n"
               "df = pd.DataFrame({'x': range(1_000_000)})")
    kernel.run("%%chat\nThis plot {fig} shows df: {df}")
    (content,) = [m["content"] for m in sent(emulator) if m["role"] == "user"]
    assert [part["type"] for part in content] == ["text", "image_url", "text"]
    assert content[0]["text"] == "This plot "
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert content[2]["text"].startswith(" shows df: pandas DataFrame, 1,000,000 rows")
    assert len(content[2]["text"]) < 1000
    # The history keeps a placeholder, not the bytes.
    kernel.run("%%chat\nAnd now?")
    first = sent(emulator)[0]["content"]
    assert first.startswith("This plot [figure: PNG, ") and "base64" not in first


def test_a_prompt_with_a_key_in_it_is_refused_before_sending(kernel, emulator):
    kernel.run("import os")
    run = kernel.run("%%chat\nMy environment: {os.environ}")
    (line,) = run.errors[0]["content"]["traceback"]
    assert "OPENAI_API_KEY" in line and "nothing was sent" in line and FAKE_KEY not in line
    assert emulator.requests == []
