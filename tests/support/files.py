"""Making a file read-only for real, even for root (who ignores file modes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` cannot be opened for writing inside the block; restored after.

    A mode without write bits stops ordinary users; root needs the immutable
    attribute (``chattr +i``). If neither holds here, the test is skipped:
    it could not show anything.
    """
    path = Path(path)
    mode = path.stat().st_mode
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
    try:
        if _writable(path):
            pytest.skip(f"cannot make {path} read-only on this machine")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        path.chmod(mode)


def _writable(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False
