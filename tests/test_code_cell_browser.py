"""--format code in a real JupyterLab and Chromium: the answer's code appears
as a new cell right below the %%chat cell, and nobody runs it."""

from __future__ import annotations

import pytest

from tests.support.browser import browser, lab, open_notebook, run_all_cells, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

__all__ = ["browser", "lab"]  # fixtures, used by name below

WAIT_MS = 30_000
CODER = '''from ipychat.providers import register_provider

class Coder:
    """Answers with a fenced code block, as a model asked for code does."""

    @classmethod
    async def create_async_generator(cls, model, messages, **kwargs):
        yield "Sorted, then printed:\\n\\n```python\\n"
        yield "print(sorted([3, 1, 2]))\\n```\\n"

register_provider("coder", Coder)'''

# [source, execution count, number of outputs] of every cell of the open notebook.
CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(
  w => [w.model.sharedModel.getSource(), w.model.executionCount ?? null,
        w.model.outputs ? w.model.outputs.length : 0])"""


def test_the_code_goes_into_a_new_cell_below_and_is_not_run(browser, lab, tmp_path):
    write_notebook(tmp_path / "code.ipynb", [
        "%load_ext ipychat",
        CODER,
        "%%chat -p coder --format code\nSort 3, 1, 2.",
    ])
    page = browser.new_page()
    open_notebook(page, lab, "code.ipynb")
    run_all_cells(page)
    page.wait_for_function(f"() => ({CELLS})().length === 4", timeout=WAIT_MS)
    cells = page.evaluate(CELLS)
    assert cells[2][0].startswith("%%chat -p coder --format code") and cells[2][1] == 3
    assert cells[3] == ["print(sorted([3, 1, 2]))", None, 0]
    # Still not run a moment later, once the kernel is idle again.
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        " === 'idle'", timeout=WAIT_MS)
    assert page.evaluate(CELLS)[3] == ["print(sorted([3, 1, 2]))", None, 0]
