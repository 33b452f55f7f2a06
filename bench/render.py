"""Live render cost of ``%%chat`` in a real kernel, against showing the answer once
and against the naive live view (``update_display`` of the whole text per chunk).

Each scenario streams N OpenAI-style SSE chunks through Lockchat from the
stream server (another process), fast or paced at one chunk per delay.
Reported: update messages and their bytes, kernel CPU (``process_time``
inside the kernel around the cell body; ``/proc`` for the whole execution),
and the time from the first chunk written by the server to the first update
message received here (``time.monotonic`` is one clock for all processes).

    python -m bench.render [--smoke] [--repeats 5]
"""

from __future__ import annotations

from . import common, inkernel, payload

COLUMNS = ["scenario", "chunks", "pace_ms", "updates", "update_MB", "kernel_cpu_s",
           "proc_cpu_s", "wall_s", "first_update_ms"]


def scenarios(sizes, pace_ms: float) -> list:
    """(name, chunks, pace in ms, cell kind) in the order they run.

    What a target compares runs back to back (``%%chat`` fast, then fetch +
    show once of the same size), not a 10-second paced run apart.
    """
    found = []
    for n in sizes:
        found += [("%%chat fast", n, 0, "chat"), ("fetch + show once", n, 0, "once"),
                  ("show final text once", n, 0, "display"),
                  (f"%%chat {pace_ms:g} ms/chunk", n, pace_ms, "chat"),
                  (f"fetch + show once {pace_ms:g} ms/chunk", n, pace_ms, "once")]
    # Naive re-rendering costs O(n^2) bytes: only at the smallest size.
    found += [("naive update per chunk", sizes[0], 0, "naive"),
              (f"naive {pace_ms:g} ms/chunk", sizes[0], pace_ms, "naive")]
    return found


def cell_for(kind: str, base: str) -> str:
    if kind == "chat":
        return inkernel.chat_cell(base)
    if kind == "once":
        return inkernel.once_cell(base)
    if kind == "display":
        return inkernel.display_cell()
    return inkernel.naive_cell(base)


def run_scenario(kernel, server, scenario) -> dict:
    name, n, pace, kind = scenario
    if kind == "display":  # shows the text the previous "once" cell left behind
        measured = inkernel.run(kernel, cell_for(kind, ""))
        first_chunk = None
    else:
        measured = inkernel.run(kernel, cell_for(kind, server.base(n, delay_ms=pace)))
        first_chunk = server.stats()[0].get("first_write")
    want = payload.answer(n)
    if measured.result["chars"] != len(want) or (kind != "display" and measured.last_text != want):
        raise AssertionError(f"{name} ({n} chunks) showed a wrong answer")
    latency = None
    if first_chunk is not None and measured.first_update_at is not None:
        latency = (measured.first_update_at - first_chunk) * 1000
    return {"cpu": measured.result["cpu"], "proc_cpu": measured.proc_cpu,
            "wall": measured.result["wall"], "updates": measured.updates,
            "update_bytes": measured.update_bytes, "first_update_ms": latency}


def summarise(scenario, runs: list) -> dict:
    name, n, pace, kind = scenario
    latencies = [r["first_update_ms"] for r in runs if r["first_update_ms"] is not None]
    return {
        "scenario": name, "kind": kind, "chunks": n, "pace_ms": pace,
        "updates": int(common.median(r["updates"] for r in runs)),
        "update_MB": common.median(r["update_bytes"] for r in runs) / 1e6,
        "kernel_cpu_s": common.median(r["cpu"] for r in runs),
        "proc_cpu_s": common.median(r["proc_cpu"] for r in runs),
        "wall_s": common.median(r["wall"] for r in runs),
        "first_update_ms": common.median(latencies) if latencies else None,
        "runs": runs,
    }


def find(rows, kind, n, pace=0) -> dict:
    return next(r for r in rows if r["kind"] == kind and r["chunks"] == n and r["pace_ms"] == pace)


def paired_ratio(chat: dict, once: dict) -> float:
    """Median over rounds of chat CPU / once CPU, the two run back to back.

    A kernel's CPU per stream is bimodal on a shared machine (in about a
    third of runs ~1.6x, on either path): a ratio of two 5-run medians then
    spans 0.7-1.6x for the same code, the ratio within each round 0.9-1.4x.
    """
    return common.median(c["cpu"] / o["cpu"] for c, o in zip(chat["runs"], once["runs"]))


def targets_from(rows, sizes, pace) -> list:
    big, small = sizes[-1], sizes[0]
    chat_big = find(rows, "chat", big)
    paced_small = find(rows, "chat", small, pace)
    once_big = find(rows, "once", big)["kernel_cpu_s"]
    display_big = find(rows, "display", big)["kernel_cpu_s"]
    found = [
        # The "rendering the final text once": the same answer, received
        # and then shown once. The live view's cost is the difference.
        common.target(f"%%chat fast {big:,}: kernel CPU / (fetch + show once)",
                      paired_ratio(chat_big, find(rows, "once", big)), "<=", 1.5, "x"),
        common.target(f"%%chat {pace:g} ms/chunk {small:,}: updates", paced_small["updates"],
                      "<=", 30),
        common.target(f"%%chat {pace:g} ms/chunk {small:,}: update MB",
                      paced_small["update_MB"], "<=", 0.3, " MB"),
        # Not targets: against the display call alone, receiving the stream is
        # charged to the view; fetching and showing once misses that reading too.
        common.target(f"(info) %%chat fast {big:,}: kernel CPU / the final display alone",
                      chat_big["kernel_cpu_s"] / display_big, "<=", 1.5, "x"),
        common.target(f"(info) fetch + show once {big:,}: kernel CPU / the final display alone",
                      once_big / display_big, "<=", 1.5, "x"),
    ]
    for n in sizes:  # not issue targets: the live view's cost when the stream is paced
        found.append(common.target(
            f"(info) %%chat {pace:g} ms/chunk {n:,}: kernel CPU / (fetch + show once, paced)",
            paired_ratio(find(rows, "chat", n, pace), find(rows, "once", n, pace)),
            "<=", 1.5, "x"))
    for row in rows:
        if row["kind"] == "chat" and row["first_update_ms"] is not None:
            found.append(common.target(f"{row['scenario']} {row['chunks']:,}: first update",
                                       row["first_update_ms"], "<=", 20, " ms"))
    return found


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0])
    cli.add_argument("--pace", type=float, default=1.0, help="ms per chunk when paced (1)")
    args = common.parse(cli, argv)
    sizes = [40, 200] if args.smoke else [2000, 10_000]
    plan = scenarios(sizes, args.pace)
    runs = {scenario: [] for scenario in plan}
    kernel = inkernel.start()
    try:
        with common.StreamServer() as server:
            for scenario in plan:  # warm-up: imports, first connection
                run_scenario(kernel, server, scenario)
            for _ in range(args.repeats):
                for scenario in plan:
                    runs[scenario].append(run_scenario(kernel, server, scenario))
    finally:
        kernel.shutdown()
    rows = [summarise(scenario, runs[scenario]) for scenario in plan]
    params = {"sizes": sizes, "pace_ms": args.pace, "provider": "lockchat (SSE)",
              "format": "markdown", "update_interval_s": 0.1,
              "update_bytes": "UTF-8 bytes of the MIME data of update_display_data messages"}
    common.report("render", args, params, rows, COLUMNS, targets_from(rows, sizes, args.pace))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
