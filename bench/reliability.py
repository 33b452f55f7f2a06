"""Refresh docs/reliability.md: run the reliability tests through pytest with
IPYCHAT_RELIABILITY_REPORT naming the report, so each test module that runs
in full writes its section (a plain ``python -m pytest`` writes nothing).

    python -m bench.reliability [--report PATH] [TEST_FILE ...]

Without test files it runs all five (kernels, a browser; ~1.5 min on two cores).
A module run only in part, or skipped, leaves its section as it was. The
exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from . import common

REPORT_ENV = "IPYCHAT_RELIABILITY_REPORT"  # read by tests/support/matrix.py
DOC = common.REPO / "docs" / "reliability.md"
TESTS = ("tests/test_fault_matrix.py", "tests/test_fault_matrix_kernel.py",
         "tests/test_soak.py", "tests/test_load.py", "tests/test_xss_browser.py")
NOT_MEASURED = "_Not measured yet._"  # a new report's placeholder for the other sections
SECTION = re.compile(r"<!-- ([\w-]+):start -->\n(.*?)\n<!-- \1:end -->", re.DOTALL)


def sections(path: Path) -> Optional[Dict[str, str]]:
    if not path.exists():
        return None
    return dict(SECTION.findall(path.read_text()))


def main(argv: Optional[List[str]] = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--report", type=Path, default=DOC,
                     help="the file to write (default docs/reliability.md)")
    cli.add_argument("tests", nargs="*", default=list(TESTS),
                     help="test files to run (default: all five reliability modules)")
    args = cli.parse_args(argv)
    report = args.report.resolve()
    before = sections(report), report.stat().st_mtime_ns if report.exists() else None
    command = [sys.executable, "-m", "pytest", *args.tests]
    print(f"=== {REPORT_ENV}={report} {' '.join(command[1:])}", flush=True)
    code = subprocess.run(command, cwd=common.REPO,
                          env={**os.environ, REPORT_ENV: str(report)}).returncode
    after = sections(report), report.stat().st_mtime_ns if report.exists() else None
    if after[1] is None or after[1] == before[1]:
        print(f"\n{report}: not written (no module ran in full; see above)")
    else:
        old = before[0] or {}
        changed = [name for name, body in after[0].items()
                   if old.get(name) != body and body != NOT_MEASURED]
        print(f"\nwrote {report}; sections changed: {', '.join(changed) or 'none'}"
              " (see git diff)")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
