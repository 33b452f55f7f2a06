"""A data frame in a prompt: how long ``{df}`` takes to become the request,
and how big that request is, for a 1,000,000-row pandas DataFrame.

Side by side in one run: ipychat's prompt building (``references.prepare``
then the JSON body an OpenAI-compatible provider sends) against what a
notebook user would otherwise paste, ``str(df)`` (pandas' own bounded
repr, the floor of "describe it"), and against the whole frame as CSV (what
"the value, whole" costs). The target is absolute, as the issue puts it:
the request stays under the value bound, in well under a second.

    python -m bench.context [--smoke] [--repeats 7]
"""

from __future__ import annotations

import json

from . import common

ROWS, SMOKE_ROWS = 1_000_000, 10_000


def frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(rows), "price": rng.random(rows) * 100,
                         "city": rng.choice(["Oslo", "Lima", "Pune"], rows),
                         "when": pd.date_range("2026-01-01", periods=rows, freq="s")})


def ipychat_request(df) -> int:
    """Bytes of the request body that ``%%chat`` builds for a question about ``df``."""
    from ipychat.providers.http import Call
    from ipychat.providers.openai import OpenAIChat
    from ipychat.references import prepare

    prompt = prepare("Which city has the highest mean price? {df}", {"df": df}, [])
    call = Call(provider="OpenAIChat", model="m", base_url="http://127.0.0.1:1/v1",
                messages=[{"role": "user", "content": prompt.content()}])
    return len(json.dumps(OpenAIChat.request_body(call)).encode())


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0], repeats=7)
    args = common.parse(cli, argv)
    from ipychat.values import MAX_VALUE_CHARS

    df = frame(SMOKE_ROWS if args.smoke else ROWS)
    contenders = {"ipychat {df} -> request body": lambda: ipychat_request(df),
                  "str(df) (pandas repr)": lambda: len(str(df).encode()),
                  "df.to_csv() (the whole value)": lambda: len(df.to_csv().encode())}
    if args.smoke:
        contenders.pop("df.to_csv() (the whole value)")
    sizes = {}

    def run(name, build):
        with common.Stopwatch() as watch:
            sizes[name] = build()
        return watch.wall

    times = common.interleaved(contenders, args.repeats, run)
    rows = [{"contender": name, "seconds": common.median(times[name]), "bytes": sizes[name]}
            for name in contenders]
    ours = rows[0]
    targets = [
        common.target(f"{len(df):,}-row frame: request body bytes", float(ours["bytes"]), "<=",
                      float(MAX_VALUE_CHARS + 2_000), " B"),
        common.target(f"{len(df):,}-row frame: prompt to request", ours["seconds"], "<=",
                      0.25, " s"),
        common.target("(info) ipychat vs str(df), time", ours["seconds"] / rows[1]["seconds"],
                      "<=", 1.5),
    ]
    common.report("context", args, {"rows": len(df), "columns": list(df.columns),
                                    "max_value_chars": MAX_VALUE_CHARS,
                                    "versions": common.versions("pandas", "numpy")},
                  rows, ["contender", "seconds", "bytes"], targets,
                  {"samples": times})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
