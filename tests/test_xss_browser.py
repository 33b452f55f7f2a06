"""Hostile model output, shown by ``%%chat`` and by the panel, runs no code in
a real JupyterLab in a real Chromium.

A provider defined in the notebook answers with every payload below, cut
mid-tag across chunks (each update renders the text so far), and once ends
in an error whose message is hostile too. JupyterLab trusts outputs made in
the running session and renders their Markdown without its sanitizer, so
what protects the page is ipychat's own escaping. The page must hold none
of the payloads as live elements, ``window.__xss`` must stay unset, and
clicking the ``javascript:`` links must do nothing, checked against a
control link that does run.
"""

from __future__ import annotations

import pytest

from ipychat.markdown import safe_markdown
from tests.support.browser import browser, lab, open_notebook, run_all_cells, write_notebook
from tests.support.matrix import markdown_table, write_section

pytestmark = pytest.mark.timeout(150)
__all__ = ["browser", "lab"]  # fixtures, used by name below
WAIT_MS = 30_000
END = "END-OF-HOSTILE"
PAYLOADS = {
    "script tag": "<script>window.__xss = 'script'</script>",
    "img onerror": "<img src=x onerror=\"window.__xss = 'img'\">",
    "svg onload": "<svg onload=\"window.__xss = 'svg'\"></svg>",
    "iframe srcdoc": "<iframe srcdoc=\"<script>parent.__xss = 'iframe'</script>\"></iframe>",
    "details ontoggle": "<details open ontoggle=\"window.__xss = 'details'\">x</details>",
    "raw javascript: anchor": "<a href=\"javascript:window.__xss = 'a'\">raw anchor</a>",
    # void(): a javascript: URL that yields a string would replace the page, and the flag.
    "Markdown javascript: link": "[click me](javascript:void(window.__xss='link'))",
    "reference javascript: link":
        "[ref link][evil]\n\n[evil]: javascript:void(window.__xss='ref')\n",
    "autolink": "<javascript:void(window.__xss='auto')>",
    "escaped colon": "[escaped](javascript\\:void(window.__xss='escaped'))",
    "control character": "[control](\x01javascript:void(window.__xss='control'))",
    "quoted reference": "> [quoted][q]\n>\n> [q]: JavaScript:void(window.__xss='quoted')\n",
    "entity": "[entity](&#106;avascript:void(window.__xss='entity'))",
    "pipe in a table's code span":
        "| a | b |\n|---|---|\n| `x | <img src=x onerror=\"window.__xss = 'table'\">` |",
    "escaped backticks": "\\`<img src=x onerror=\"window.__xss = 'backticks'\">\\`",
    # U+2028 is no line end to Markdown: no fence opens, the tag is prose.
    "line separator before a fence": "x\u2028```\n<img src=x onerror=\"window.__xss = 'lsep'\">\n",
    # Last: our escaper thinks this opens a fence to the end; Markdown does not.
    "backtick in a fence's info": "```x`\n<img src=x onerror=\"window.__xss = 'fence'\">\n",
}
PROVIDER = f'''
from ipychat import errors
from ipychat.providers import AsyncGeneratorProvider, register_provider

HOSTILE = {list(PAYLOADS.values())!r}

class Hostile(AsyncGeneratorProvider):
    working = True

    @classmethod
    async def create_async_generator(cls, model, messages, proxy=None, **kwargs):
        for payload in HOSTILE:
            half = len(payload) // 2  # updates render the text so far: half a tag too
            yield payload[:half]
            yield payload[half:] + "\\n\\n"
        if "fail" in messages[-1]["content"]:
            raise errors.ChatError("<img src=x onerror=\\"window.__xss = 'error'\\"> {END}")
        yield "{END}"

register_provider("hostile", Hostile)
'''
# The failing cell last: Run All stops at an error.
CELLS = ["%load_ext ipychat", PROVIDER,
         "from ipychat import ChatPanel\npanel = ChatPanel(provider='hostile')\npanel",
         "%%chat -p hostile\nshow me", "%%chat -p hostile\nfail"]
# Every element rendered from model text that could run code or leave the page.
LIVE = """() => {
  const found = [];
  const roots = document.querySelectorAll(
      '.jp-RenderedMarkdown, .jp-RenderedText, .ipychat-status, .ipychat-answer');
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (['script', 'iframe', 'svg', 'img', 'object', 'embed', 'details'].includes(tag)) {
        found.push(tag);
      }
      for (const attr of el.attributes) {
        if (attr.name.startsWith('on')) found.push(`${tag}[${attr.name}]`);
      }
      const href = (el.getAttribute('href') || '').trim();
      if (/^(javascript|vbscript|data):/i.test(href)) found.push(`a[href=${href}]`);
    }
  }
  return found;
}"""
# How many outputs of cells (not of widgets) show the text that ends an answer.
SHOWN = """(end) => [...document.querySelectorAll('.jp-OutputArea-output')]
  .filter((el) => !el.closest('.ipychat-panel') && !el.querySelector('.ipychat-panel'))
  .filter((el) => el.innerText.includes(end)).length"""
STATUS_HAS = "(text) => document.querySelector('.ipychat-status').innerText.includes(text)"
OWN_DONE = "() => document.querySelector('.ipychat-status').innerText === 'Done: Hostile answered.'"
CONTROL = """() => {
  const link = document.createElement('a');
  link.id = 'xss-control';
  link.href = "javascript:void(window.__control = 'ran')";
  link.textContent = 'control';
  link.style.cssText = 'position: fixed; top: 0; left: 0; z-index: 100000; background: white';
  document.body.appendChild(link);
}"""


def assert_inert(page) -> None:
    live = page.evaluate(LIVE)
    assert not live, sorted(set(live))


def ask(page, prompt: str) -> None:
    page.fill(".ipychat-prompt", prompt)
    page.click("button.ipychat-send")


@pytest.mark.browser
def test_hostile_answers_run_nothing_in_jupyterlab(lab, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    write_notebook(tmp_path / "xss.ipynb", CELLS)
    open_notebook(page, lab, "xss.ipynb")
    run_all_cells(page)
    page.wait_for_selector(".ipychat-panel button.ipychat-send")
    # The first cell's answer and the second one's error line; the panel shares the
    # notebook's conversation, so both answers stream into it too.
    page.wait_for_function(f"() => ({SHOWN})({END!r}) == 2")
    page.wait_for_function(STATUS_HAS, arg="in a %%chat cell")
    ask(page, "show me in the panel")
    page.wait_for_function(OWN_DONE)
    assert "<script>" in page.inner_text(".ipychat-answer")  # shown as text, not run
    ask(page, "fail in the panel")
    page.wait_for_function(STATUS_HAS, arg=END)
    assert page.locator(".ipychat-panel .ipychat-answer").count() == 4
    assert_inert(page)
    links = [link for text in ("click me", "ref link", "escaped")
             for link in page.locator("a", has_text=text).all() if link.is_visible()]
    assert len(links) == 3 * 6  # in both cells' answers, and in the panel's four
    for link in links:
        link.click()
    page.evaluate(CONTROL)
    page.click("#xss-control")  # queued after the clicks above: once it ran, they did too
    page.wait_for_function("() => window.__control === 'ran'")
    assert page.evaluate("() => window.__xss") is None
    assert_inert(page)
    write_section("xss", xss_section())


def xss_section() -> str:
    rows = [[name, "inert", "inert"] for name in PAYLOADS]
    rows.append(["hostile text in an error message", "inert", "inert"])
    return ("## Hostile model output in a real browser\n\nJupyterLab and Chromium "
            "(`tests/test_xss_browser.py`): each payload streamed cut mid-tag, then "
            "checked for live elements, a set `window.__xss`, and clicked links.\n\n"
            + markdown_table(["payload", "%%chat", "panel"], rows))


# Text that looks like code to a careless escaper but is prose to Markdown, so
# its tag would run: each must come out escaped (the browser test renders them).
LOOKALIKES = {
    "fence with a backtick in its info": "```x`\n<img onerror=1>\n",
    "list item ended inside its fence": "- a\n  ```\nb <img onerror=1>\n  ```",
    "list fence closing a deeper one": "- a\n    ```\n  ```\n  <img onerror=1>",
    "fence after a list marker": "- ```\n  ```\n  <img onerror=1>",
    "escaped backticks": "\\`<img onerror=1>\\`",
    "code span across a quote": "`a\n> <img onerror=1>`",
    "code span across a table cell": "| `a | <img onerror=1>` |\n|---|---|",
    "code span runs of unequal length": "``<img onerror=1>```",
    "line separator before a fence": "a\u2028```\n<img onerror=1>\n```\n",
    "form feed before a fence": "a\x0c```\n<img onerror=1>\n```\n",
    "two answers in a history": "```x`\nfirst\n\n---\n\n<img onerror=1>\n```x`\n",
}


@pytest.mark.parametrize("text", LOOKALIKES.values(), ids=list(LOOKALIKES))
def test_markdown_that_only_looks_like_code_is_escaped(text):
    safe = safe_markdown(text)
    assert "<img" not in safe and "&lt;img onerror=1>" in safe


def test_real_code_keeps_its_angle_brackets():
    text = "1. Step\n   ```python\n   if a < b: pass\n   ```\n2. Then `x<y` and a <b>"
    assert safe_markdown(text) == text.replace("a <b>", "a &lt;b>")
