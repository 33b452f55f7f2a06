"""What ``%load_ext ipychat`` adds to a bare IPython start, in fresh processes.

Each sample is a new interpreter that starts an ``InteractiveShell`` and then
loads the extension; the load is timed inside it (``perf_counter``), and the
whole process is timed from outside with and without the load. One extra run
under ``python -X importtime`` names the modules the load imports, slowest
first, and whether aiohttp or ipywidgets (meant to be lazy) are among them.

    python -m bench.load [--smoke] [--repeats 7]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from . import common

MARK = "@@LOAD"
START = """
import sys, time, json
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t1 = time.perf_counter()
"""
LOAD = START + f"""
before = set(sys.modules)
sys.stderr.write({MARK!r} + "\\n"); sys.stderr.flush()
shell.run_line_magic("load_ext", "ipychat")
t2 = time.perf_counter()
added = sorted(set(sys.modules) - before)
print(json.dumps({{"ipython_s": t1 - t0, "load_ext_s": t2 - t1, "modules_added": len(added),
                  "aiohttp": "aiohttp" in sys.modules, "ipywidgets": "ipywidgets" in sys.modules,
                  "chat_magic": "chat" in shell.magics_manager.magics["cell"]}}))
"""
LAZY = ("aiohttp", "ipywidgets")


def python(code: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=common.REPO,
                          capture_output=True, text=True, timeout=120, check=True)


def sample() -> dict:
    """One fresh process of each kind, timed from outside, plus the inside figures."""
    with common.Stopwatch() as bare:
        python(START)
    with common.Stopwatch() as loaded:
        inside = json.loads(python(LOAD).stdout)
    return {**inside, "process_bare_s": bare.wall, "process_loaded_s": loaded.wall}


def importtime(top: int = 12) -> list:
    """The top-level imports ``load_ext`` causes, by cumulative microseconds."""
    stderr = python(LOAD, "-X", "importtime").stderr
    after = stderr.split(MARK, 1)[1].splitlines()
    found = []
    for line in after:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, self_us, cumulative, name = (part for part in [""] + line[12:].split("|"))
        if not name.startswith(" ") or name.startswith("  "):
            continue  # nested import: counted in its parent's cumulative time
        found.append({"module": name.strip(), "cumulative_ms": int(cumulative) / 1000,
                      "self_ms": int(self_us) / 1000})
    found.sort(key=lambda row: -row["cumulative_ms"])
    return found[:top]


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0], repeats=7)
    args = common.parse(cli, argv)
    python("import IPython, ipychat")  # warm the OS file cache once
    samples = [sample() for _ in range(args.repeats)]
    med = {key: common.median(s[key] for s in samples)
           for key in ("ipython_s", "load_ext_s", "process_bare_s", "process_loaded_s")}
    rows = [
        {"measure": "bare IPython start (in process)", "seconds": med["ipython_s"]},
        {"measure": "%load_ext ipychat (in process)", "seconds": med["load_ext_s"]},
        {"measure": "process: python + IPython shell", "seconds": med["process_bare_s"]},
        {"measure": "process: same + %load_ext ipychat", "seconds": med["process_loaded_s"]},
        {"measure": "process difference",
         "seconds": med["process_loaded_s"] - med["process_bare_s"]},
    ]
    imports = importtime()
    print(common.table(imports, ["module", "cumulative_ms", "self_ms"],
                       "Top-level imports caused by %load_ext ipychat (-X importtime, one run)"))
    print()
    first = samples[0]
    targets = [common.target("%load_ext ipychat over bare IPython", med["load_ext_s"],
                             "<=", 0.1, " s")]
    targets += [common.target(f"{name} not imported by load", float(first[name]), "<=", 0)
                for name in LAZY]
    targets.append(common.target("%%chat registered", float(first["chat_magic"]), ">=", 1))
    common.report("load", args, {"shell": "IPython.core.interactiveshell.InteractiveShell",
                                 "modules_added": first["modules_added"],
                                 "versions": common.versions("ipython", "traitlets")},
                  rows, ["measure", "seconds"], targets,
                  {"samples": samples, "importtime": imports})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
