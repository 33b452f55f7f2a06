"""ChatPanel in a real JupyterLab and a real Chromium: the answer streams into
the page, Stop cuts it short, and a finished answer makes the README's picture.

The kernel answers from ipychat's built-in emulator (IPYCHAT_DEMO=1), which
it starts on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.browser import browser, lab, open_notebook, run_all_cells, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

__all__ = ["browser", "lab"]  # fixtures, used by name below

REPO = Path(__file__).resolve().parents[1]
ARTIFACT = REPO / "artifacts" / "panel.png"
README_PICTURE = REPO / "docs" / "panel.png"
WAIT_MS = 30_000
PROVIDER = "openassistant (emulator, needs auth)"
SLOW_PROMPT = "Count slowly, please. [[emulator delay=0.05 chunks=80]]"
NICE_PROMPT = "What can this panel do?"

ANSWER = "document.querySelector('.ipychat-answer').innerText"
STATUS_HAS = "(text) => document.querySelector('.ipychat-status').innerText.includes(text)"
# The panel is narrower than the window and nothing inside it sticks out sideways.
FITS = """() => {
  const panel = document.querySelector('.ipychat-panel');
  return panel.getBoundingClientRect().right <= window.innerWidth
      && panel.scrollWidth <= panel.clientWidth + 1;
}"""
# Counts every change to the answer from now on, to prove that Stop stopped it.
WATCH_ANSWER = """() => {
  window.answerChanges = 0;
  new MutationObserver(() => { window.answerChanges += 1; })
    .observe(document.querySelector('.ipychat-answer'),
             {childList: true, subtree: true, characterData: true});
}"""


def answer_text(page) -> str:
    return page.inner_text(".ipychat-answer")


def start_panel(page, lab, tmp_path):
    write_notebook(tmp_path / "panel.ipynb", [
        "%load_ext ipychat",
        "from ipychat import ChatPanel\npanel = ChatPanel()\npanel",
    ])
    open_notebook(page, lab, "panel.ipynb")
    run_all_cells(page)
    page.wait_for_selector(".ipychat-panel button.ipychat-send")


def ask(page, prompt: str) -> None:
    page.fill(".ipychat-prompt textarea", prompt)
    page.click("button.ipychat-send")


def test_the_panel_streams_stops_and_answers_in_jupyterlab(lab, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    start_panel(page, lab, tmp_path)
    page.select_option(".ipychat-provider select", label=PROVIDER)

    ask(page, SLOW_PROMPT)
    page.wait_for_function(f"() => {ANSWER}.includes('tok')")
    first = len(answer_text(page))
    page.wait_for_function(f"(n) => {ANSWER}.length > n", arg=first)  # it grows while streaming
    page.click("button.ipychat-stop")
    page.wait_for_function(STATUS_HAS, arg="Stopped")
    page.evaluate(WATCH_ANSWER)
    stopped = answer_text(page)
    assert stopped.rstrip().endswith("(interrupted)")
    assert 2 <= stopped.count("tok") < 80  # cut short, not finished
    ARTIFACT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACT), full_page=True)

    assert page.evaluate("() => window.answerChanges") == 0  # nothing more arrived
    assert answer_text(page) == stopped
    ask(page, NICE_PROMPT)
    page.wait_for_function(STATUS_HAS, arg="Done")
    assert "Emulator answer (openassistant)" in answer_text(page)
    assert NICE_PROMPT in answer_text(page)
    assert page.input_value(".ipychat-prompt textarea") == ""
    # docs/panel.png is tracked: refresh it only on request (IPYCHAT_UPDATE_SCREENSHOT=1).
    picture = README_PICTURE if os.environ.get("IPYCHAT_UPDATE_SCREENSHOT") == "1" else \
        ARTIFACT.with_name("panel-answer.png")
    page.locator(".ipychat-panel").screenshot(path=str(picture))
    assert picture.stat().st_size < 200_000
    check_dark_and_narrow(page)


def check_dark_and_narrow(page) -> None:
    """The panel follows the dark theme and fits a narrow window without overflowing."""
    page.evaluate("() => { window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'}); }")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.evaluate("() => { const shell = window.jupyterapp.shell; "
                  "shell.collapseLeft(); shell.collapseRight(); }")
    page.set_viewport_size({"width": 480, "height": 1000})
    page.wait_for_function(FITS)  # lumino lays out again after the resize
    background = page.evaluate(
        "() => getComputedStyle(document.querySelector('.ipychat-panel')).backgroundColor")
    red, green, blue = (int(c) for c in background[background.index("(") + 1:-1].split(",")[:3])
    assert max(red, green, blue) < 80, background  # a dark background, from the theme
    page.locator(".ipychat-panel").screenshot(path=str(ARTIFACT.with_name("panel-dark-narrow.png")))
