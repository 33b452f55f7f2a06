"""Peak memory of a big answer streamed through ``%%chat`` in a real kernel.

A 5 MB answer (N SSE chunks of ~250 chars, Lockchat, Markdown output) is
streamed twice in each fresh kernel: first with nothing traced, reading the
kernel's resident set before and its high-water mark after; then under
``tracemalloc``, whose peak counts every Python allocation the cell made
(texts, Markdown copies, JSON messages) but not the ZMQ buffers. Growth is
given as a multiple of the answer's size.

    python -m bench.memory [--smoke] [--repeats 3] [--chunks 20000] [--format text]
"""

from __future__ import annotations

import contextlib
import os

from . import common, inkernel, payload

CHUNK_CHARS = 250
RSS_CELL = """
import resource as _br, json as _bj, time as _bt
def _brss():
    with open('/proc/self/statm') as _bf:
        return int(_bf.read().split()[1]) * {page}
_brss0, _bmax0 = _brss(), _br.getrusage(_br.RUSAGE_SELF).ru_maxrss * 1024
_bw0 = _bt.monotonic()
{call}
_bwall = _bt.monotonic() - _bw0
print({mark!r} + _bj.dumps({{'rss_before': _brss0, 'maxrss_before': _bmax0,
    'maxrss_after': _br.getrusage(_br.RUSAGE_SELF).ru_maxrss * 1024, 'rss_after': _brss(),
    'wall': _bwall, 'chars': len(_bench_out)}}))
"""
TRACED_CELL = """
import tracemalloc as _btm, json as _bj, time as _bt
_btm.start()
_bw0 = _bt.monotonic()
{call}
_bwall = _bt.monotonic() - _bw0
_bcur, _bpeak = _btm.get_traced_memory()
_btm.stop()
print({mark!r} + _bj.dumps({{'traced_peak': _bpeak, 'traced_after': _bcur, 'wall': _bwall,
    'chars': len(_bench_out)}}))
"""


def measured(kernel, template: str, base: str, want_chars: int, limit: float,
             body=inkernel.chat_call, fmt: str = "markdown") -> dict:
    cell = template.format(call=body(base, fmt), mark=inkernel.MARK,
                           page=os.sysconf("SC_PAGE_SIZE"))
    outcome = inkernel.execute(kernel, cell, timeout=limit)
    seen = {"timed_out": outcome.timed_out, "updates": outcome.updates,
            "update_bytes": outcome.update_bytes, "displays": outcome.displays,
            "display_bytes": outcome.display_bytes, "proc_cpu": outcome.proc_cpu,
            "shown_chars": len(outcome.last_text), "abandoned": outcome.abandoned}
    if outcome.timed_out:
        return seen
    if outcome.status != "ok" or outcome.errors or outcome.result is None:
        raise RuntimeError(f"memory cell failed: {outcome.errors or outcome.stdout[-300:]}")
    if outcome.result["chars"] != want_chars:
        raise AssertionError(f"the kernel got {outcome.result['chars']} chars, not {want_chars}")
    return {**seen, **outcome.result}


@contextlib.contextmanager
def fresh_kernel(server, limit: float):
    """A new kernel that already streamed a small answer: lazy imports are done."""
    kernel = inkernel.start()
    try:
        warm = server.base(10, size=CHUNK_CHARS)
        measured(kernel, RSS_CELL, warm, len(payload.answer(10, CHUNK_CHARS)), limit)
        yield kernel
    finally:
        kernel.shutdown()


def sample(server, n: int, limit: float, fmt: str) -> dict:
    """An untraced run (RSS), then a traced one, in one fresh kernel; the floor
    (fetch, then show once) in another, so that neither skews the other.

    A run past ``limit`` seconds is interrupted and recorded as not finished.
    """
    want = len(payload.answer(n, CHUNK_CHARS))
    base = server.base(n, size=CHUNK_CHARS)
    with fresh_kernel(server, limit) as kernel:
        rss = measured(kernel, RSS_CELL, base, want, limit, fmt=fmt)
        traced = {"timed_out": True} if rss["timed_out"] else measured(
            kernel, TRACED_CELL, base, want, limit, fmt=fmt)
    with fresh_kernel(server, limit) as kernel:
        once = measured(kernel, TRACED_CELL, base, want, limit, inkernel.once_body, fmt)
    found = {"untraced": rss, "traced": traced, "once": once,
             "once_peak": once.get("traced_peak"), "finished": not traced["timed_out"]}
    if found["finished"]:
        found.update(rss_growth=rss["maxrss_after"] - rss["rss_before"],
                     new_high_water=rss["maxrss_after"] > rss["maxrss_before"],
                     traced_peak=traced["traced_peak"], traced_after=traced["traced_after"])
    return found


def median_of(samples, key, all_runs=False):
    values = [s[key] for s in samples if (all_runs or s["finished"]) and s.get(key) is not None]
    return common.median(values) if values else None


def per_answer(value, size):
    return None if value is None else value / size


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0], repeats=3)
    cli.add_argument("--chunks", type=int, default=None,
                     help=f"chunks of ~{CHUNK_CHARS} chars (20000: a 5 MB answer)")
    cli.add_argument("--format", choices=("markdown", "text"), default="markdown",
                     help="%%%%chat --format (markdown sends the text twice: Markdown and plain)")
    cli.add_argument("--time-limit", type=float, default=120,
                     help="seconds before a cell is interrupted and counted as not finished")
    args = common.parse(cli, argv)
    n = args.chunks or (200 if args.smoke else 20_000)
    size = len(payload.answer(n, CHUNK_CHARS).encode())
    with common.StreamServer() as server:
        samples = []
        for _ in range(args.repeats):
            samples.append(sample(server, n, args.time_limit, args.format))
            if not samples[-1]["finished"]:
                break  # it will not finish next time either; spare the shared cores
    peak, rss = median_of(samples, "traced_peak"), median_of(samples, "rss_growth")
    untraced = [s["untraced"] for s in samples]
    rows = [
        {"measure": "answer size", "MB": size / 1e6, "x_answer": 1.0},
        {"measure": "tracemalloc peak during the cell", "MB": per_answer(peak, 1e6),
         "x_answer": per_answer(peak, size)},
        {"measure": "tracemalloc still held after", "x_answer": None,
         "MB": per_answer(median_of(samples, "traced_after"), 1e6)},
        {"measure": "floor: fetch + show once, tracemalloc peak",
          "MB": per_answer(median_of(samples, "once_peak", all_runs=True), 1e6),
         "x_answer": per_answer(median_of(samples, "once_peak", all_runs=True), size)},
        {"measure": "RSS high-water growth", "MB": per_answer(rss, 1e6),
         "x_answer": per_answer(rss, size)},
        {"measure": "display + update messages (untraced run)", "MB": common.median(
            u["display_bytes"] for u in untraced) / 1e6, "x_answer": None,
         "note": f"{int(common.median(u['displays'] for u in untraced)):,} outputs, "
                 f"{int(common.median(u['updates'] for u in untraced)):,} updates"},
        {"measure": "kernel CPU s (untraced run)", "MB": None, "x_answer": None,
         "note": f"{common.median(u['proc_cpu'] for u in untraced):.2f}"},
        {"measure": "finished within the time limit", "MB": None, "x_answer": None,
         "note": f"{sum(s['finished'] for s in samples)} of {len(samples)} "
                 f"(limit {args.time_limit:g} s per cell; last shown "
                 f"{untraced[-1]['shown_chars'] / 1e6:.2f} M chars)"},
    ]
    targets = [common.target("tracemalloc peak / answer size", per_answer(peak, size), "<=", 4,
                             "x"),
               common.target("RSS growth / answer size", per_answer(rss, size), "<=", 4, "x")]
    common.report("memory", args, {"chunks": n, "chunk_chars": CHUNK_CHARS, "answer_bytes": size,
                                   "provider": "lockchat (SSE)", "format": args.format,
                                   "time_limit_s": args.time_limit},
                  rows, ["measure", "MB", "x_answer", "note"], targets, {"samples": samples})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
