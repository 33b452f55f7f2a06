"""Many simultaneous streams in one process: does total throughput hold up?

The same work two ways, side by side: K streams of N SSE chunks one after
another (each stream alone: "one stream's throughput"), and the K streams at
once on one event loop. Throughput is chunks decoded per wall second. The
minimal decode from ``clients`` runs too, to tell ipychat's share of any
loss from what aiohttp and the loop lose anyway.

    python -m bench.concurrency [--smoke] [--repeats 5] [--streams 50] [--chunks 2000]
"""

from __future__ import annotations

import asyncio
import gc

from . import clients, common, payload

CONSUMERS = {
    "ipychat Lockchat": lambda: clients.provider("lockchat"),
    "ipychat Vitalentum": lambda: clients.provider("vitalentum"),
    "minimal decode (reference)": lambda: clients.minimal_decode,
}


async def one_after_another(consume, base: str, k: int) -> list:
    return [await consume(base) for _ in range(k)]


async def all_at_once(consume, base: str, k: int) -> list:
    return await asyncio.gather(*(consume(base) for _ in range(k)))


def sample(loop, consume, base: str, k: int, together: bool, want: str) -> float:
    """Wall seconds for ``k`` streams; every stream's text is checked."""
    gc.collect()
    run = all_at_once if together else one_after_another
    with common.Stopwatch() as watch:
        answers = loop.run_until_complete(run(consume, base, k))
    if any("".join(parts) != want for parts in answers):
        raise AssertionError("a stream decoded a wrong answer")
    return watch.wall


def measure(n: int, k: int, repeats: int) -> dict:
    consumers = {name: make() for name, make in CONSUMERS.items()}
    plan = {(name, together): consume for name, consume in consumers.items()
            for together in (False, True)}
    want = payload.answer(n)
    loop = asyncio.new_event_loop()
    try:
        with common.StreamServer() as server:
            base = server.base(n)
            for (name, together), consume in plan.items():  # warm-up
                sample(loop, consume, base, min(k, 5), together, want)
            return common.interleaved(
                plan, repeats,
                lambda key, consume: sample(loop, consume, base, k, key[1], want))
    finally:
        loop.close()


def rows_from(walls: dict, n: int, k: int) -> list:
    rows = []
    for name in CONSUMERS:
        alone = common.median(walls[(name, False)])
        together = common.median(walls[(name, True)])
        rows.append({"consumer": name, "streams": k, "chunks_each": n,
                     "one_stream_chunks_per_s": k * n / alone,
                     "concurrent_chunks_per_s": k * n / together,
                     "ratio": alone / together,
                     "walls_alone": walls[(name, False)], "walls_together": walls[(name, True)]})
    return rows


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0])
    cli.add_argument("--streams", type=int, default=None, help="simultaneous streams (50)")
    cli.add_argument("--chunks", type=int, default=None, help="chunks per stream (2000)")
    args = common.parse(cli, argv)
    k = args.streams or (5 if args.smoke else 50)
    n = args.chunks or (100 if args.smoke else 2000)
    rows = rows_from(measure(n, k, args.repeats), n, k)
    targets = [common.target(f"{row['consumer']}: {k} at once vs one stream", row["ratio"],
                             ">=", 0.7, "x")
               for row in rows if row["consumer"].startswith("ipychat")]
    common.report("concurrency", args, {"streams": k, "chunks": n,
                                        "server": "subprocess (bench.streamserver)"},
                  rows, ["consumer", "streams", "chunks_each", "one_stream_chunks_per_s",
                         "concurrent_chunks_per_s", "ratio"], targets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
