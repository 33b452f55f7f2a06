"""Every benchmark, one after the other (never two at once: they would share
the two cores), then one table of every target.

    python -m bench.all [--smoke] [--repeats N] [--results-dir DIR] [--only decode,load]

Each benchmark runs in its own process and writes its own NAME.json; this
writes all.json with the targets of all. A missed target is reported, not
an error: the exit status is non-zero only if a benchmark failed to run.
"""

from __future__ import annotations

import json
import subprocess
import sys

from . import common

BENCHMARKS = ("decode", "render", "load", "concurrency", "memory", "context",
              "connections")


def run(name: str, args) -> int:
    command = [sys.executable, "-m", f"bench.{name}", "--results-dir", str(args.results_dir)]
    if args.smoke:
        command.append("--smoke")
    if args.explicit_repeats is not None:
        command += ["--repeats", str(args.explicit_repeats)]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    return subprocess.run(command, cwd=common.REPO).returncode


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0])
    cli.add_argument("--only", default=",".join(BENCHMARKS),
                     help="comma-separated subset of " + ", ".join(BENCHMARKS))
    raw = cli.parse_args(argv)
    explicit = raw.repeats
    args = common.parse(cli, argv)
    args.explicit_repeats = explicit  # each benchmark keeps its own default otherwise
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        cli.error(f"unknown benchmark(s): {', '.join(unknown)}")
    status = {name: run(name, args) for name in chosen}
    targets = []
    for name in chosen:
        path = args.results_dir / f"{name}.json"
        if status[name] == 0 and path.exists():
            for found in json.loads(path.read_text())["targets"]:
                targets.append({**found, "name": f"{name}: {found['name']}"})
    rows = [{"benchmark": name, "exit_status": code} for name, code in status.items()]
    print()
    common.report("all", args, {"benchmarks": chosen}, rows, ["benchmark", "exit_status"],
                  targets)
    return 0 if all(code == 0 for code in status.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
