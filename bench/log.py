"""What the log adds to an answer: the same answers with the log off and on, side by side.

Each contender runs a batch of complete answers through ipychat's own path
from events to the end: ``stream_into`` into a ``StreamView`` (with a
publisher that only counts, so display costs nothing here), then
``Recorder.keep``, which writes the row when the log is on. The events are
made in memory (2 KB of answer in 40 pieces, reasoning, usage, finish), and
each question carries four turns of history, so what is measured is
ipychat's work, not a network's. Contenders take turns batch by batch:

- log off;
- log on, a fresh log file;
- log on, a log that already holds many rows (does a big log cost more?);
- replay on, every question found in the log (the lookup and the replay).

The figure is the difference per answer, log on minus log off.

    python -m bench.log [--smoke] [--repeats 7] [--answers 200] [--rows 5000]
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
from pathlib import Path

from . import common

HISTORY_TURNS = 4
PIECES, PIECE = 40, "A piece of the answer, about fifty characters long. "


def question(i: int) -> tuple:
    """(prompt, messages) of answer ``i``: four earlier turns, then the prompt."""
    messages = [{"role": "system", "content": "Be brief."}]
    for turn in range(HISTORY_TURNS):
        messages += [{"role": "user", "content": f"Earlier question {turn}?"},
                     {"role": "assistant", "content": PIECE * PIECES}]
    prompt = f"Question number {i}: what is a Python wheel?"
    return prompt, [*messages, {"role": "user", "content": prompt}]


async def events():
    from ipychat.events import Finish, Reasoning, Text, Usage

    yield Reasoning("Thinking about wheels and packaging. " * 5)
    for _ in range(PIECES):
        yield Text(PIECE)
    yield Usage(180, 400)
    yield Finish("stop")


def counting_publisher(data: dict, handle):
    return handle or 1


async def one_answer(recorder, target, i: int) -> None:
    from ipychat.render import StreamView
    from ipychat.session import stream_into

    prompt, messages = question(i)
    answer = target.answer(prompt, messages, conversation="bench")
    source = recorder.source(target, answer).stream(messages)
    view = StreamView(publish=counting_publisher, stats=True)
    view.start()
    await stream_into(source, view, answer)
    warning = recorder.keep(answer, target.secrets())
    if warning:
        raise AssertionError(warning)
    if answer.text != PIECE * PIECES:
        raise AssertionError("a wrong answer")


class FakeTarget:
    """What ``targets.Target`` gives the recorder, with events made in memory."""

    label, model_label, options = "OpenAIChat", "gpt-4o-mini", {"temperature": 0.2}

    def answer(self, prompt, messages, conversation=None):
        from ipychat.answer import Answer

        return Answer(prompt, self.label, self.model_label, messages=messages,
                      options=dict(self.options), base_url="https://api.openai.com/v1",
                      conversation=conversation)

    def secrets(self):
        return []

    def stream(self, messages):
        return events()


def contenders(root: Path, rows: int) -> dict:
    from ipychat.log import Log
    from ipychat.recorder import Recorder

    def recorder(name: str, enabled: bool, mode: str = "off") -> Recorder:
        made = Recorder(Log(root / name / "log.db"))
        made.enabled, made.mode = enabled, mode
        return made

    big, replaying = recorder("big", True), recorder("replay", False, "on")
    fill(big, range(-rows, 0))  # other questions than the measured ones
    fill(replaying, range(REPLAY_SET))  # the questions it will ask, over and over
    return {"log off": recorder("off", False), "log on": recorder("on", True),
            f"log on, {rows:,} rows already": big, "replay on (found)": replaying}


#: Questions the replay contender asks (and finds), over and over.
REPLAY_SET = 50


def fill(recorder, questions) -> None:
    """Log answers to ``questions`` through ``recorder``, whatever its settings."""
    loop = asyncio.new_event_loop()
    settings = recorder.enabled, recorder.mode
    recorder.enabled, recorder.mode = True, "off"
    try:
        for i in questions:
            loop.run_until_complete(one_answer(recorder, FakeTarget(), i))
    finally:
        recorder.enabled, recorder.mode = settings
        loop.close()


def batch(loop, recorder, answers: int, start: int) -> float:
    """Milliseconds per answer for ``answers`` answers."""
    target = FakeTarget()
    gc.collect()

    async def run():
        for i in range(start, start + answers):
            await one_answer(recorder, target, i % REPLAY_SET if recorder.mode == "on" else i)

    with common.Stopwatch() as watch:
        loop.run_until_complete(run())
    return watch.wall * 1000 / answers


def measure(answers: int, rows: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ipychat-bench-log-") as tmp:
        plan = contenders(Path(tmp), rows)
        loop = asyncio.new_event_loop()
        counter = iter(range(10**9))
        try:
            for recorder in plan.values():  # warm-up: imports, first connection
                batch(loop, recorder, min(answers, 10), next(counter) * answers)
            return common.interleaved(
                plan, repeats,
                lambda name, rec: batch(loop, rec, answers, next(counter) * answers))
        finally:
            loop.close()


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0], repeats=7)
    cli.add_argument("--answers", type=int, default=None, help="answers per batch (200)")
    cli.add_argument("--rows", type=int, default=None, help="rows in the big log (5000)")
    args = common.parse(cli, argv)
    answers = args.answers or (20 if args.smoke else 200)
    rows = args.rows or (50 if args.smoke else 5000)
    samples = measure(answers, rows, args.repeats)
    off = common.median(samples["log off"])
    table = [{"contender": name, "answers": answers, "ms_per_answer": common.median(found),
              "added_ms": common.median(found) - off, "samples_ms": found}
             for name, found in samples.items()]
    added = {row["contender"]: row["added_ms"] for row in table}
    targets = [common.target("log on minus log off, per answer", added["log on"], "<=", 5, " ms"),
               common.target(f"same, with {rows:,} rows already", added[table[2]["contender"]],
                             "<=", 5, " ms")]
    common.report("log", args, {"answers_per_batch": answers, "rows_in_big_log": rows,
                                "history_turns": HISTORY_TURNS,
                                "answer_chars": len(PIECE) * PIECES,
                                "versions": common.versions("ipython")},
                  table, ["contender", "answers", "ms_per_answer", "added_ms"], targets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
