"""The chat panel's updates while an answer streams, after a long conversation
and in an empty panel, in a real kernel, through real comm messages.

A page is played by this process: it sends the panel's ``hello`` (and gets
the whole conversation once), then ``ask``, as panel.js does, and counts
every comm message the panel sends because of the question (its custom
messages and its state updates: busy, status) until the update that frees
Send again. The answer is the same N-chunk OpenAI-style stream through Lockchat
(``bench.streamserver``, another process), paced at one chunk per ``--pace``
ms, after 0 and after T earlier turns.

    python -m bench.panel [--smoke] [--repeats 5] [--pace 1]
"""

from __future__ import annotations

import json
import time

from . import common, inkernel, payload

COLUMNS = ["scenario", "turns", "chunks", "pace_ms", "updates", "upserts", "update_bytes_mean",
           "update_bytes_max", "sync_KB", "wall_s"]
#: One earlier turn: a question and a ~1 KB Markdown answer.
QUESTION = "Question {i}: how does this part of the code work?"
ANSWER = ("It works in three steps.\n\n1. **Parse** the input with `parse(x)`.\n"
          "2. **Check** it.\n3. **Run** it:\n\n```python\nrun(parse(x))\n```\n\n") * 6


def panel_cell(base: str, turns: int) -> str:
    """A new panel on a conversation of ``turns`` earlier turns; prints its comm id."""
    return "\n".join([
        "import json as _bj",
        "from ipychat.answer import Answer as _BA",
        "from ipychat.panel import ChatPanel as _BP",
        "from ipychat.session import Conversation as _BC",
        "try:\n    _bpanel.close()\nexcept NameError:\n    pass",
        "_bchat = _BC()",
        f"for _bi in range({turns}):",
        f"    _bchat.record(_BA({QUESTION!r}.format(i=_bi), 'Lockchat', 'gpt-3.5-turbo', "
        f"text={ANSWER!r}, status='complete', duration_s=1.0))",
        "_bpanel = _BP(_bchat, provider='lockchat', demo=False)",
        f"_bpanel.base_url = {base!r}",
        f"print({inkernel.MARK!r} + _bj.dumps({{'comm': _bpanel.comm.comm_id}}))",
    ])


def sent_by(msg: dict, comm: str):
    """The panel's comm payload in ``msg`` (custom message or state update), if any."""
    if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != comm:
        return None
    return msg["content"]["data"]


def size(data: dict) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def is_final(data) -> bool:
    """The panel's last word on a question: the state update that frees Send."""
    return data.get("method") == "update" and data.get("state", {}).get("busy") is False


def run_once(kernel, server, n: int, pace: float, turns: int) -> dict:
    comm = inkernel.run(kernel, panel_cell(server.base(n, delay_ms=pace), turns)).result["comm"]
    kernel.comm_send(comm, {"kind": "hello"})
    greeted = kernel.listen(lambda m: ((sent_by(m, comm) or {}).get("content") or {}).get(
        "kind") == "sync", timeout=60)
    sync_bytes = size(sent_by(greeted[-1], comm))
    started = time.monotonic()
    asked = kernel.comm_send(comm, {"kind": "ask", "text": "hi"})
    seen = kernel.listen(lambda m: sent_by(m, comm) is not None and is_final(sent_by(m, comm)),
                         timeout=120)
    wall = time.monotonic() - started
    sent = [sent_by(m, comm) for m in seen
            if sent_by(m, comm) is not None and m["parent_header"].get("msg_id") == asked]
    final = [d for d in sent if d.get("method") == "custom"][-1]["content"]["message"]
    if final.get("text") != payload.answer(n):
        raise AssertionError(f"the panel showed a wrong answer after {turns} turns")
    sizes = [size(data) for data in sent]
    upserts = [d for d in sent if (d.get("content") or {}).get("kind") == "upsert"]
    return {"updates": len(sent), "upserts": len(upserts), "bytes": sizes,
            "mean": sum(sizes) / len(sizes), "max": max(sizes), "sync_bytes": sync_bytes,
            "wall": wall}


def summarise(name: str, turns: int, n: int, pace: float, runs: list) -> dict:
    return {
        "scenario": name, "turns": turns, "chunks": n, "pace_ms": pace,
        "updates": int(common.median(r["updates"] for r in runs)),
        "upserts": int(common.median(r["upserts"] for r in runs)),
        "update_bytes_mean": common.median(r["mean"] for r in runs),
        "update_bytes_max": common.median(r["max"] for r in runs),
        "sync_KB": common.median(r["sync_bytes"] for r in runs) / 1000,
        "wall_s": common.median(r["wall"] for r in runs),
        "runs": [{k: v for k, v in r.items() if k != "bytes"} for r in runs],
    }


def targets_from(rows: list, turns: int, n: int) -> list:
    long, empty = rows[1], rows[0]
    return [
        common.target(f"{turns} turns, then {n:,} pieces: updates", long["updates"], "<=", 30),
        common.target(f"{turns} turns / empty panel: bytes per update (mean)",
                      long["update_bytes_mean"] / empty["update_bytes_mean"], "<=", 1.2, "x"),
        common.target(f"{turns} turns / empty panel: bytes of the largest update",
                      long["update_bytes_max"] / empty["update_bytes_max"], "<=", 1.2, "x"),
    ]


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0])
    cli.add_argument("--pace", type=float, default=1.0, help="ms per chunk (1)")
    args = common.parse(cli, argv)
    n, turns = (200, 20) if args.smoke else (2000, 200)
    plan = [("empty panel", 0), (f"after {turns} turns", turns)]
    runs = {name: [] for name, _ in plan}
    kernel = inkernel.start()
    try:
        with common.StreamServer() as server:
            for name, count in plan:  # warm-up: imports, the first connection
                run_once(kernel, server, n, args.pace, count)
            for _ in range(args.repeats):
                for name, count in plan:  # in turns: drift hits both alike
                    runs[name].append(run_once(kernel, server, n, args.pace, count))
    finally:
        kernel.shutdown()
    rows = [summarise(name, count, n, args.pace, runs[name]) for name, count in plan]
    params = {"chunks": n, "turns": turns, "pace_ms": args.pace, "provider": "lockchat (SSE)",
              "update_bytes": "UTF-8 bytes of each comm message's data (JSON) the panel sent "
                              "because of the question, until Send is free again"}
    common.report("panel", args, params, rows, COLUMNS, targets_from(rows, turns, n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
