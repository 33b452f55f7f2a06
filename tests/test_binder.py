"""The Binder configuration, checked as far as it can be offline.

mybinder.org builds with repo2docker: since binder/ exists, only the files in
it count. It runs ``pip install -r binder/requirements.txt`` from the
repository root after copying the whole repository, and ``binder/start`` in
front of Jupyter. This test does the same in a clean virtualenv (no system
site-packages) from a copy of the checkout (pip builds a local project in
place, which must not litter the working tree), then runs the quickstart
with that virtualenv's Python as the kernel, in the environment
``binder/start`` gives it.

It does not build a Docker image (no Docker, no network here); installing
takes about 1.5 minutes from the local package index, the whole test 2-3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_notebooks import ROOT, UNSET, emulator_answer, execute_notebook, shown

pytestmark = [pytest.mark.slow, pytest.mark.kernel, pytest.mark.timeout(420)]

COPIED = ("pyproject.toml", "README.md", "ipychat", "binder", "notebooks")
INSTALL_TIMEOUT = 300


def run(argv, cwd: Path, timeout: float = 60, env=None) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def copy_checkout(dest: Path) -> Path:
    dest.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def start_env(repo: Path) -> dict:
    """The environment ``binder/start`` hands to the command it starts."""
    given = {k: v for k, v in os.environ.items() if k != "IPYCHAT_DEMO"}
    out = run([repo / "binder" / "start", "env", "-0"], cwd=repo, env=given)
    pairs = (item.partition("=") for item in out.split("\0") if item)
    return {key: value for key, _, value in pairs}


@pytest.fixture(scope="module")
def binder_install(tmp_path_factory):
    """(repo copy, virtualenv python) with binder/requirements.txt installed."""
    base = tmp_path_factory.mktemp("binder")
    repo = copy_checkout(base / "repo")
    run([sys.executable, "-m", "venv", base / "venv"], cwd=base)
    python = base / "venv" / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo,
        timeout=INSTALL_TIMEOUT)
    return repo, python


def test_requirements_name_jupyterlab_the_widget_packages_the_demo_libraries_and_this_repository():
    lines = [line.split("#")[0].strip()
             for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    names = [line for line in lines if line]
    assert names[-1] == "."
    # pandas and matplotlib: notebook 05 puts a data frame and a figure in a prompt.
    assert {n.split(">")[0] for n in names[:-1]} == {"jupyterlab", "ipywidgets", "anywidget",
                                                     "pandas", "matplotlib"}


def test_start_is_executable_and_turns_on_the_demo_mode():
    start = ROOT / "binder" / "start"
    assert os.access(start, os.X_OK)
    assert start_env(ROOT)["IPYCHAT_DEMO"] == "1"


def test_the_virtualenv_has_jupyterlab_ipywidgets_and_its_own_ipychat(binder_install):
    repo, python = binder_install
    out = run([python, "-c", "import jupyterlab, ipywidgets, anywidget, ipykernel, ipychat, sys; "
               "print(sys.prefix); print(ipychat.__file__)"], cwd=repo / "notebooks")
    prefix, location = out.split()
    assert Path(prefix) == python.parent.parent  # a clean venv, not this interpreter
    assert Path(location).is_relative_to(prefix)  # installed, not this checkout
    static = Path(location).parent / "static"  # the panel's page side, installed with it
    assert all((static / name).is_file() for name in ("messages.js", "panel.js", "panel.css"))


def test_quickstart_runs_in_the_binder_environment(binder_install, tmp_path):
    repo, python = binder_install
    env = {k: v for k, v in start_env(repo).items() if k not in UNSET}  # no keys: offline
    nb = execute_notebook(repo / "notebooks" / "01-quickstart.ipynb", str(python),
                          tmp_path, env)
    (answer,) = shown(nb, "zero-config")
    assert answer.endswith(emulator_answer(
        "openai", "Explain list comprehensions in two sentences.", "gpt-4o-mini"))
    assert "built-in emulator (demo mode)" in answer
