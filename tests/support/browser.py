"""JupyterLab and a headless Chromium for browser tests, every wait bounded.

    with JupyterLab(tmp_path, env={"IPYCHAT_DEMO": "1"}) as lab, chromium() as browser:
        write_notebook(tmp_path / "t.ipynb", ["%load_ext ipychat"])
        page = open_notebook(browser.new_page(), lab, "t.ipynb")
        run_all_cells(page)

The server listens on 127.0.0.1 only; news, update checks and the PyPI
extension manager are off and Chromium's background networking is disabled,
so nothing leaves the machine. The pytest fixtures ``lab`` and ``browser``
at the bottom can be imported by any browser test module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterable, Optional

import pytest

START_LIMIT = 60.0  # seconds for JupyterLab to answer /api/status
STOP_LIMIT = 10.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# User settings that keep JupyterLab quiet and offline: no news or update toasts.
QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings":
        {"theme": "JupyterLab Light"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class JupyterLab:
    """A JupyterLab server rooted in ``root``; ``url`` and ``token`` once started.

    ``app="notebook"`` starts Notebook 7 instead (the same front-end parts,
    one document per page).
    """

    def __init__(self, root: Path, env: Optional[Dict[str, str]] = None, app: str = "jupyterlab"):
        self.app = app
        self.root = Path(root)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / ".jupyterlab.log"
        self._extra_env = env or {}
        self.process: Optional[subprocess.Popen] = None

    def _env(self) -> Dict[str, str]:
        home = self.root / ".jupyter-home"
        settings = home / "settings"
        for name, values in QUIET_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
        env.update(JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
        env.update(self._extra_env)
        return env

    def _argv(self) -> list:
        if self.app == "notebook":
            own = ["--JupyterNotebookApp.expose_app_in_browser=True"]
        else:
            own = ["--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
                   "--LabApp.extension_manager=readonly",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        return [sys.executable, "-m", self.app, "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}", *own,
                "--ServerApp.terminals_enabled=False",
                *(["--allow-root"] if os.geteuid() == 0 else [])]

    def start(self) -> "JupyterLab":
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self._argv(), env=self._env(), cwd=self.root,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_tail()}")
            if self._status_ok():
                return self
            time.sleep(0.2)  # polling a process we cannot subscribe to, bounded above
        raise RuntimeError(f"JupyterLab did not start within {START_LIMIT:g} s:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _status_ok(self) -> bool:
        try:
            return "started" in self.api("status")
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return False

    def lab_url(self, notebook: str) -> str:
        where = "notebooks" if self.app == "notebook" else "lab/tree"
        return f"{self.url}/{where}/{notebook}?token={self.token}"

    def stop(self) -> None:
        """Shut the kernels down through the API, then the server; bounded, then forced."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            for kernel in self.api("kernels"):
                self.api(f"kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, OSError, ValueError):
            pass  # the server is going anyway; the forced stop below still runs
        self.process.terminate()
        try:
            self.process.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)  # the group this test started, nothing else
            self.process.wait(STOP_LIMIT)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "JupyterLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def chromium():
    """A headless Debian Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


def write_notebook(path: Path, cells: Iterable[str]) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, str(path))
    return path


# The open notebook's kernel, from the app object JupyterLab exposes.
_KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
      && panel.sessionContext.session.kernel;
  return !!(kernel && kernel.status === 'idle' && panel.content.widgets.length > 0);
}"""


def open_notebook(page, lab: JupyterLab, name: str, timeout_ms: int = 60_000):
    """Open ``name`` and wait until its kernel is idle (commands sent earlier are lost)."""
    page.goto(lab.lab_url(name), timeout=timeout_ms)
    page.wait_for_function(_KERNEL_IDLE, timeout=timeout_ms)
    return page


def run_all_cells(page) -> None:
    # Fire and forget: returning the command's promise would wait for every cell.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def kernel_idle(page) -> bool:
    return page.evaluate(_KERNEL_IDLE)


def needs_browser(*extra):
    """Skip (with the reason) where Playwright, Chromium or JupyterLab (or one
    of ``extra``: (module, install hint) pairs) are missing.

    In CI (CI=true) a missing piece is a failure: .ci/run installs them all,
    and a silently skipped browser test proves nothing.
    """
    missing = []
    for module, hint in (("playwright.sync_api", "pip install playwright"),
                         ("jupyterlab", "pip install jupyterlab"),
                         *extra):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            missing.append(hint)
    if chromium_path() is None:
        missing.append("apt-get install chromium")
    if missing:
        reason = "browser test needs: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def lab(tmp_path):
    needs_browser()
    with JupyterLab(tmp_path, env={"IPYCHAT_DEMO": "1"}) as server:
        yield server


@pytest.fixture
def browser():
    needs_browser()
    with chromium() as launched:
        yield launched
