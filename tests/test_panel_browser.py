"""ChatPanel in a real JupyterLab (and Notebook 7) and a real Chromium: Enter
sends and the answer streams into a new message, the conversation grows, a
``%%chat`` cell streams into the panel while it runs, Stop cuts an answer
short, copying works, the list follows new text unless scrolled up, and a
three-turn conversation makes the README's picture.

The kernel answers from ipychat's built-in emulator (IPYCHAT_DEMO=1), which
it starts on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.browser import (JupyterLab, browser, chromium, lab, needs_browser,
                                   open_notebook, run_all_cells, write_notebook)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
README_PICTURE = REPO / "docs" / "panel.png"
WAIT_MS = 30_000
CODE_QUESTION = "Show me some code:\n```python\nprint('hi')\n```"
CELL_QUESTION = "What does a %%chat cell add? [[emulator delay=0.05]]"  # its answer, slowly

MESSAGES = "() => document.querySelectorAll('.ipychat-panel .ipychat-message').length"
LAST = "document.querySelector('.ipychat-panel .ipychat-message:last-child')"
STATUS_HAS = "(text) => document.querySelector('.ipychat-status').innerText.includes(text)"
# The last answer has finished: it shows a stats line, no longer streams, and the
# page has drawn its last text (rendering Markdown is asynchronous).
LAST_DONE = f"""() => {{ const m = {LAST};
  return !!m && m.classList.contains('ipychat-assistant')
      && !m.classList.contains('ipychat-streaming') && m.classList.contains('ipychat-drawn')
      && m.querySelector('.ipychat-stats').innerText.length > 0; }}"""
KERNEL_BUSY = """() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return kernel.status === 'busy';
}"""
# The panel is narrower than the window and nothing inside it sticks out sideways.
FITS = """() => {
  const panel = document.querySelector('.ipychat-panel');
  return panel.getBoundingClientRect().right <= window.innerWidth
      && panel.scrollWidth <= panel.clientWidth + 1;
}"""


__all__ = ["browser", "lab"]  # fixtures, used by name below


def new_page(browser, **options):
    context = browser.new_context(viewport={"width": 1100, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"], **options)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return page


def run_cell(page, index: int) -> None:
    page.evaluate("(i) => { const nb = window.jupyterapp.shell.currentWidget;"
                  " nb.content.activeCellIndex = i;"
                  " window.jupyterapp.commands.execute('notebook:run-cell'); }", index)


def ask(page, text: str) -> None:
    page.fill(".ipychat-prompt", text)
    page.press(".ipychat-prompt", "Enter")


def texts(page) -> list:
    return page.eval_on_selector_all(".ipychat-panel .ipychat-message .ipychat-body",
                                     "(els) => els.map((el) => el.innerText.trim())")


def test_a_chat_in_the_panel_and_a_cell_that_streams_into_it(lab, browser):
    page = new_page(browser)
    write_notebook(lab.root / "chat.ipynb", [
        "%load_ext ipychat",
        "from ipychat import ChatPanel\npanel = ChatPanel()\npanel",
        f"%%chat\n{CELL_QUESTION}",
    ])
    open_notebook(page, lab, "chat.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    page.wait_for_selector(".ipychat-panel .ipychat-send")
    # The model box offers the server's models (the emulator's, in demo mode).
    page.wait_for_function(STATUS_HAS, arg="Ready")
    page.wait_for_function("() => document.querySelectorAll('.ipychat-panel datalist option')"
                           ".length > 0")
    assert "from the built-in emulator" in page.inner_text(".ipychat-models-note")

    # Enter sends: the question, then an answer streaming into a new message.
    ask(page, CODE_QUESTION)
    page.wait_for_function(f"() => ({MESSAGES})() === 2")
    page.wait_for_function(LAST_DONE)
    assert page.input_value(".ipychat-prompt") == ""
    question, answer = texts(page)
    assert question.startswith("Show me some code:") and "print('hi')" in question
    assert answer.startswith("Emulator answer (openai)")
    assert "```" not in answer  # Markdown, rendered: the fence became a code block

    # Shift+Enter is a new line, not a question.
    page.fill(".ipychat-prompt", "Line one")
    page.press(".ipychat-prompt", "Shift+Enter")
    page.type(".ipychat-prompt", "line two")
    assert page.input_value(".ipychat-prompt") == "Line one\nline two"
    assert page.evaluate(MESSAGES) == 2
    page.press(".ipychat-prompt", "Enter")
    page.wait_for_function(f"() => ({MESSAGES})() === 4")
    page.wait_for_function(LAST_DONE)
    shown = texts(page)
    assert len(shown) == 4 and shown[3].startswith("Emulator answer")  # both turns
    assert shown[2] == "Line one line two"  # Markdown: one paragraph; the text keeps its line

    # Up in an empty box brings the last question back; an empty question is not sent.
    page.press(".ipychat-prompt", "ArrowUp")
    assert page.input_value(".ipychat-prompt") == "Line one\nline two"
    page.fill(".ipychat-prompt", "")
    page.press(".ipychat-prompt", "Enter")
    page.wait_for_function(STATUS_HAS, arg="empty")
    assert page.evaluate(MESSAGES) == 4

    # A %%chat cell run now streams into the panel while the cell still runs.
    run_cell(page, 2)
    page.wait_for_function(f"() => ({MESSAGES})() === 6")
    page.wait_for_function(f"() => {LAST}.classList.contains('ipychat-streaming')"
                           f" && {LAST}.innerText.includes('Emulator') && ({KERNEL_BUSY})()")
    assert page.is_disabled(".ipychat-send")  # one answer at a time
    page.wait_for_function(LAST_DONE)
    assert texts(page)[4] == CELL_QUESTION
    page.wait_for_function(STATUS_HAS, arg="in a %%chat cell")
    assert page.is_enabled(".ipychat-send")
    ARTIFACTS.mkdir(exist_ok=True)
    # docs/panel.png is tracked: refresh it only on request (IPYCHAT_UPDATE_SCREENSHOT=1).
    picture = README_PICTURE if os.environ.get("IPYCHAT_UPDATE_SCREENSHOT") == "1" else \
        ARTIFACTS / "panel-three-turns.png"
    # All three turns in one picture: the list's height cap (it scrolls past 60 % of the
    # window) is lifted for it, in a window tall enough to hold the panel, then put back.
    page.set_viewport_size({"width": 1100, "height": 2400})
    page.evaluate("() => { document.querySelector('.ipychat-messages').style.maxHeight = 'none'; }")
    page.locator(".ipychat-panel").scroll_into_view_if_needed()
    page.locator(".ipychat-panel").screenshot(path=str(picture))
    page.evaluate("() => { document.querySelector('.ipychat-messages').style.maxHeight = ''; }")
    page.set_viewport_size({"width": 1100, "height": 1000})
    assert picture.stat().st_size < 250_000

    check_copy(page)
    check_stop(page)
    check_export(page, lab)
    check_dark_and_narrow(page)


def check_copy(page) -> None:
    """The first answer's text, and the code block in it, go to the clipboard."""
    first_answer = page.locator(".ipychat-panel .ipychat-assistant").first
    first_answer.locator(".ipychat-copy").click()
    page.wait_for_function("() => navigator.clipboard.readText().then("
                           "(t) => t.startsWith('**Emulator answer (openai)**'))")
    first_answer.locator(".ipychat-copy-code").first.click()
    page.wait_for_function("() => navigator.clipboard.readText().then("
                           "(t) => t.trim() === \"print('hi')\")")


def check_stop(page) -> None:
    """Stop keeps the text so far, marks it, and nothing more arrives."""
    before = page.evaluate(MESSAGES)
    ask(page, "Count slowly, please. [[emulator delay=0.05 chunks=80]]")
    page.wait_for_function(f"(n) => ({MESSAGES})() === n + 2 && {LAST}.innerText.includes('tok')",
                           arg=before)
    first = len(page.evaluate(f"() => {LAST}.innerText"))
    page.wait_for_function(f"(n) => {LAST}.innerText.length > n", arg=first)  # it grows
    assert page.is_disabled(".ipychat-send") and page.is_enabled(".ipychat-stop")
    page.click(".ipychat-stop")
    page.wait_for_function(STATUS_HAS, arg="Stopped")
    page.evaluate(f"""() => {{ window.changes = 0;
      new MutationObserver(() => {{ window.changes += 1; }})
        .observe({LAST}, {{childList: true, subtree: true, characterData: true}}); }}""")
    stopped = page.evaluate(f"() => {LAST}.querySelector('.ipychat-body').innerText")
    assert page.inner_text(".ipychat-panel .ipychat-message:last-child .ipychat-mark") == \
        "(interrupted)"
    assert 2 <= stopped.count("tok") < 80  # cut short, not finished
    # A round trip through the kernel: any update still on its way has arrived after it.
    page.click(".ipychat-export")
    page.wait_for_function(STATUS_HAS, arg="Exported")
    assert page.evaluate("() => window.changes") == 0
    assert page.is_enabled(".ipychat-send") and page.is_disabled(".ipychat-stop")


def check_export(page, lab) -> None:
    status = page.inner_text(".ipychat-status")
    path = Path(status.split(" to ", 1)[1].strip())
    assert path.parent == lab.root and path.name.startswith("chat-")
    text = path.read_text()
    assert text.count("## You") == 4 and CELL_QUESTION in text and "(interrupted)" in text


def check_dark_and_narrow(page) -> None:
    """The panel follows the dark theme and fits a narrow window without overflowing."""
    page.evaluate("() => { window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'}); }")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.evaluate("() => { const shell = window.jupyterapp.shell; "
                  "shell.collapseLeft(); shell.collapseRight(); }")
    page.set_viewport_size({"width": 480, "height": 1000})
    page.wait_for_function(FITS)  # lumino lays out again after the resize
    for selector in (".ipychat-panel", ".ipychat-messages"):
        background = page.evaluate(
            f"() => getComputedStyle(document.querySelector('{selector}')).backgroundColor")
        channels = background[background.index("(") + 1:-1].split(",")[:3]
        assert max(int(c) for c in channels) < 80, (selector, background)  # from the theme
    page.locator(".ipychat-panel").screenshot(path=str(ARTIFACTS / "panel-dark-narrow.png"))


# A conversation long enough to scroll, with answers that grow line by line.
FOLLOW_CELLS = [
    "%load_ext ipychat",
    "from ipychat import ChatPanel, Conversation\nfrom ipychat.answer import Answer\n"
    "chat = Conversation()\n"
    "for i in range(8):\n"
    "    chat.record(Answer(f'question {i}', 'Earlier', text='A line.\\n\\n' * 12,"
    " status='complete'))\n"
    "panel = ChatPanel(chat)\npanel",
]
AT_BOTTOM = """() => { const l = document.querySelector('.ipychat-messages');
  return l.scrollHeight > l.clientHeight + 200
      && l.scrollHeight - l.scrollTop - l.clientHeight <= 2; }"""


def test_the_list_follows_new_text_unless_scrolled_up(lab, browser):
    page = new_page(browser)
    write_notebook(lab.root / "follow.ipynb", FOLLOW_CELLS)
    open_notebook(page, lab, "follow.ipynb")
    run_all_cells(page)
    page.wait_for_function(f"() => ({MESSAGES})() === 16")
    page.wait_for_function(AT_BOTTOM)  # drawn at the end of the conversation
    ask(page, "Count slowly, please. [[emulator delay=0.05 chunks=120]]")
    for count in (5, 15):  # while it grows, the newest text stays in view
        page.wait_for_function(f"(n) => ({LAST}.innerText.match(/tok/g) || []).length >= n"
                               f" && ({AT_BOTTOM})()", arg=count)
    page.hover(".ipychat-messages")
    page.mouse.wheel(0, -400)  # the user scrolls up to read
    page.wait_for_function("() => { const l = document.querySelector('.ipychat-messages');"
                           " return l.scrollHeight - l.scrollTop - l.clientHeight > 300; }")
    top = page.evaluate("() => document.querySelector('.ipychat-messages').scrollTop")
    grown = page.evaluate(f"() => {LAST}.innerText.length")
    page.wait_for_function(f"(n) => {LAST}.innerText.length > n + 40", arg=grown)
    assert page.evaluate("() => document.querySelector('.ipychat-messages').scrollTop") == top
    page.click(".ipychat-stop")
    page.wait_for_function(STATUS_HAS, arg="Stopped")


def test_the_panel_works_in_notebook_7(tmp_path):
    needs_browser(("notebook", "pip install notebook"))
    with JupyterLab(tmp_path, env={"IPYCHAT_DEMO": "1"}, app="notebook") as server, \
            chromium() as browser:
        page = new_page(browser)
        write_notebook(tmp_path / "nb7.ipynb", [
            "%load_ext ipychat", "from ipychat import ChatPanel\nChatPanel()"])
        open_notebook(page, server, "nb7.ipynb")
        run_all_cells(page)
        page.wait_for_selector(".ipychat-panel .ipychat-send")
        ask(page, "Hello from **Notebook 7**")
        page.wait_for_function(LAST_DONE)
        question, answer = texts(page)
        assert question == "Hello from Notebook 7"  # rendered: the bold is no longer **
        assert page.locator(".ipychat-user strong").inner_text() == "Notebook 7"
        assert answer.startswith("Emulator answer (openai)")
        page.locator(".ipychat-panel").screenshot(path=str(ARTIFACTS / "panel-notebook7.png"))


TOOL_CELLS = [
    "%load_ext ipychat",
    "import asyncio\n"
    "from ipychat import ChatPanel\n\n"
    "def get_weather(city: str) -> dict:\n"
    "    '''Today's weather in a city.'''\n"
    "    return {'city': city, 'sky': '<img src=x onerror=\"window.hacked=1\">'}\n\n"
    "async def slow(seconds: float) -> str:\n"
    "    '''Takes a while.'''\n"
    "    await asyncio.sleep(seconds)\n"
    "    return 'done'\n\n"
    "ChatPanel(tools=[get_weather, slow])",
]
CALLS = f"{LAST}?.querySelector('.ipychat-calls')"  # null until the answer shows


def test_tool_calls_show_under_their_answer_as_text(lab, browser):
    page = new_page(browser)
    write_notebook(lab.root / "tools.ipynb", TOOL_CELLS)
    open_notebook(page, lab, "tools.ipynb")
    run_all_cells(page)
    page.wait_for_selector(".ipychat-panel .ipychat-send")
    assert page.inner_text(".ipychat-tools") == "· tools: get_weather, slow"
    ask(page, """Weather, slowly? [[emulator call=get_weather,slow """
              """args='[{"city": "Oslo"}, {"seconds": 1.5}]']]""")
    # While the slow tool runs its line waits, open, under the first call's result.
    page.wait_for_function(f"() => !!{CALLS} && {CALLS}.open"
                           f" && {CALLS}.innerText.includes('slow(seconds=1.5) …')")
    page.wait_for_function(LAST_DONE)
    assert page.evaluate(f"() => {CALLS}.querySelector('pre').textContent") == (
        'get_weather(city="Oslo") → {"city": "Oslo", "sky": "<img src=x onerror=\\"window.hacked=1\\">"}'
        "\nslow(seconds=1.5) → done")
    assert page.evaluate(f"() => {CALLS}.open") is False  # folded once the answer ended
    assert page.evaluate(f"() => {CALLS}.querySelector('summary').innerText") == "2 tool calls"
    assert page.evaluate(f"() => {LAST}.querySelectorAll('img').length") == 0  # text, not HTML
    assert page.evaluate("() => window.hacked") is None
    assert " · 2 tool calls" in page.evaluate(f"() => {LAST}.querySelector('.ipychat-stats')"
                                             ".innerText")
