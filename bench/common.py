"""What every benchmark shares: the command line, the stream server process,
medians, the printed table, target checks and the JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, List, Optional

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


# -- command line -------------------------------------------------------------


def parser(description: str, repeats: int = 5) -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--smoke", action="store_true",
                     help="tiny sizes and one repeat: checks that the benchmark runs")
    cli.add_argument("--repeats", type=int, default=None,
                     help=f"runs per measurement, the median is reported (default {repeats})")
    cli.add_argument("--results-dir", type=Path, default=RESULTS,
                     help="where NAME.json is written (default bench/results)")
    cli.set_defaults(default_repeats=repeats)
    return cli


def parse(cli: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = cli.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.smoke else args.default_repeats
    return args


# -- the stream server --------------------------------------------------------


class StreamServer:
    """``bench.streamserver`` in a subprocess; stop it with ``close()`` or ``with``."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.streamserver"], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"stream server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line)}"

    def base(self, n: int, delay_ms: float = 0, piece: int = 16384, size: int = 0) -> str:
        """Base URL of an ``n``-chunk stream (a provider appends its own path)."""
        return f"{self.url}/{n}/{int(delay_ms * 1000)}/{piece}/{size}"

    def stats(self, last: int = 1) -> List[dict]:
        with urllib.request.urlopen(f"{self.url}/stats?last={last}", timeout=10) as reply:
            return json.loads(reply.read())

    def close(self) -> None:
        end_process(self.proc)

    def __enter__(self) -> "StreamServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- measuring ----------------------------------------------------------------


def end_process(proc: subprocess.Popen) -> None:
    """End a helper process that stops when its stdin closes; kill it after 10 s."""
    if proc.poll() is not None:
        return
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def interleaved(contenders: dict, repeats: int, run: Callable) -> dict:
    """``run(name, fn)`` for each contender, round-robin ``repeats`` times.

    Round-robin, not one contender after the other: slow drift of a noisy
    machine then hits every contender alike. Who goes first rotates, and
    every other round runs backwards, so that no one always goes first or
    always follows the same neighbour. Returns name -> list of results.
    """
    names = list(contenders)
    results = {name: [] for name in names}
    for i in range(repeats):
        first = i % len(names)
        order = names[first:] + names[:first]
        for name in reversed(order) if i % 2 else order:
            results[name].append(run(name, contenders[name]))
    return results


class Stopwatch:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def target(name: str, value: float, op: str, limit: float, unit: str = "") -> dict:
    """One target check; ``op`` is ">=" or "<="."""
    if value is None:  # not measured (e.g. did not finish): not met
        return {"name": name, "value": None, "op": op, "limit": limit, "unit": unit, "met": False}
    met = value >= limit if op == ">=" else value <= limit
    return {"name": name, "value": value, "op": op, "limit": limit, "unit": unit, "met": met}


# -- reporting ----------------------------------------------------------------


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def versions(*modules: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in modules:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def table(rows: List[dict], columns: List[str], title: Optional[str] = None) -> str:
    cells = [[fmt(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(col.ljust(w) for col, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def targets_table(targets: List[dict]) -> str:
    rows = [{"target": t["name"], "measured": t["value"],
             "needed": f"{t['op']} {fmt(t['limit'])}{t['unit']}", "met": t["met"]}
            for t in targets]
    return table(rows, ["target", "measured", "needed", "met"], "Targets")


def report(name: str, args, params: dict, rows: List[dict], columns: List[str],
           targets: List[dict], extra: Optional[dict] = None) -> Path:
    """Print the tables and write ``NAME.json``; returns its path."""
    print(table(rows, columns, f"{name} ({'smoke' if args.smoke else 'full'}, "
                               f"median of {args.repeats})"))
    print()
    print(targets_table(targets))
    data = {"name": name, "command": " ".join([Path(sys.executable).name, "-m", f"bench.{name}",
                                               *sys.argv[1:]]),
            "smoke": args.smoke, "repeats": args.repeats, "machine": machine(),
            "params": params, "rows": rows, "targets": targets, **(extra or {})}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwritten: {path}")
    return path
