"""Load: 50 answers of 5,000 chunks each, streaming at once through one
kernel: 20 ``%%chat --background`` cells, 15 ChatPanel sends and 15 Python
API tasks, spread over every provider. Each prompt numbers its words and
the emulator quotes them back one chunk per word, so the expected text is
exact: a chunk lost, repeated or out of order shows. Figures go to the
reliability report (docs/reliability.md, refreshed by
``python -m bench.reliability``; a plain test run writes nothing).
"""

from __future__ import annotations

import inspect
import json
import threading
import time

import pytest

from ipychat.emulator import EmulatorServer, base_url_for
from ipychat.emulator.reply import answer_pieces
from tests.support.kernel import Kernel
from tests.support.matrix import (MODELS, PROVIDERS, call_kwargs, chat_cell, kernel_env, machine,
                                  markdown_table, model_seen, user, write_section)

pytestmark = [pytest.mark.slow, pytest.mark.kernel, pytest.mark.timeout(300)]
CHUNKS = 5000
CELLS, PANELS, API_TASKS = 20, 15, 15
#: Seconds between chunks: each answer then streams for longer than it takes to start all 50.
DELAY = 0.002
LIMIT = 240  # seconds for everything to finish; a bound, not a pause


def load_prompt(tag: str, words: int, delay: float) -> str:
    """A prompt the emulator answers with one chunk per numbered word."""
    numbered = " ".join(f"w{i}" for i in range(words))
    return f"{tag} [[emulator delay={delay} no_limit]] {numbered}"


def words_for(name: str, tag: str) -> int:
    """How many numbered words make the answer exactly ``CHUNKS`` chunks."""
    base = len(answer_pieces(name, user(load_prompt(tag, 0, DELAY)), model_seen(name)))
    words = CHUNKS - base  # one chunk per word
    assert len(expected_pieces(name, tag, words)) == CHUNKS
    return words


def expected_pieces(name: str, tag: str, words: int) -> list:
    return answer_pieces(name, user(load_prompt(tag, words, DELAY)), model_seen(name))


class Job:
    def __init__(self, kind: str, index: int, name: str):
        self.kind, self.index, self.name = kind, index, name
        self.tag = f"{kind}-{index}"
        self.words = words_for(name, self.tag)
        self.expected = "".join(expected_pieces(name, self.tag, self.words))


def jobs() -> list:
    made = [Job("cell", i, PROVIDERS[i % 7]) for i in range(CELLS)]
    # The panel has no key field: Anthropic, which needs one off its own host, sits out.
    keyless = [name for name in PROVIDERS if name != "anthropic"]
    made += [Job("panel", i, keyless[i % len(keyless)]) for i in range(PANELS)]
    made += [Job("api", i, PROVIDERS[(i + 3) % 7]) for i in range(API_TASKS)]
    return made


SETUP = """
import asyncio, json, time
from ipychat.panel import ChatPanel
from ipychat.session import Conversation
from ipychat.providers import get_provider
from ipychat.runner import background_tasks

async def collect(name, prompt, kwargs):
    model = kwargs.pop("model", None)
    chunks = get_provider(name).create_async_generator(model, [{"role": "user", "content": prompt}],
                                                       **kwargs)
    return "".join([text async for text in chunks])

def start_panel(name, url, model, prompt):
    panel = ChatPanel(conversation=Conversation(), provider=name, demo=False)
    panel.base_url, panel.model = url, model or ""
    assert panel.ask(prompt)
    return panel
"""


def launch_cell(emulator, panels: list, api: list) -> str:
    lines = ["panels, api = [], []"]
    for job in panels:
        url = base_url_for(job.name, emulator.url)
        lines.append(f"panels.append(start_panel({job.name!r}, {url!r}, {MODELS.get(job.name)!r}, "
                     f"load_prompt({job.tag!r}, {job.words}, {DELAY})))")
    for job in api:
        kwargs = {**call_kwargs(job.name, emulator.url), "model": model_seen(job.name)}
        lines.append(f"api.append(asyncio.get_running_loop().create_task(collect("
                     f"{job.name!r}, load_prompt({job.tag!r}, {job.words}, {DELAY}), {kwargs!r})))")
    return "\n".join(lines)


GATHER = f"""
everything = asyncio.gather(*background_tasks(), *[p.task for p in panels], *api)
await asyncio.wait_for(everything, {LIMIT})
print(json.dumps({{"cell": [globals()[f"v{{i}}"] for i in range({CELLS})],
                  "panel": [p.conversation.turns[-1].text for p in panels],
                  "api": [t.result() for t in api]}}))
"""


class Peak:
    """Follows the emulator's log in a thread: the most answers open at once."""

    def __init__(self, emulator, total: int):
        self.emulator, self.total, self.most = emulator, total, 0
        self.done = threading.Thread(target=self._watch, daemon=True)
        self.done.start()

    def _check(self) -> bool:
        chats = [r for r in self.emulator.requests if r.faults]
        self.most = max(self.most, sum(not (r.finished or r.disconnected) for r in chats))
        return len(chats) == self.total and all(r.finished for r in chats)

    def _watch(self) -> None:
        self.emulator.wait_for(self._check, LIMIT)


def launch_all(kernel, emulator, planned: list) -> None:
    """Start every answer: the background cells one by one, then the rest in one cell."""
    for job in planned[:CELLS]:
        url = base_url_for(job.name, emulator.url)
        cell = chat_cell(job.name, url, load_prompt(job.tag, job.words, DELAY),
                         "--no-history --format text --background", f"-o v{job.index}")
        assert kernel.run(cell).errors == []
    rest = launch_cell(emulator, planned[CELLS:CELLS + PANELS], planned[CELLS + PANELS:])
    assert kernel.run(rest).errors == []


def test_fifty_answers_of_5000_chunks_at_once():
    planned = jobs()
    with EmulatorServer(delay=0) as emulator:
        kernel = Kernel(env=kernel_env())
        try:
            kernel.run("%load_ext ipychat\n" + SETUP + inspect.getsource(load_prompt))
            peak = Peak(emulator, len(planned))
            started = time.monotonic()
            launch_all(kernel, emulator, planned)
            gathered = kernel.run(GATHER, timeout=LIMIT + 30)
            seconds = time.monotonic() - started
            assert gathered.errors == [], gathered.errors
            peak.done.join(30)
        finally:
            kernel.shutdown()
    results = json.loads(gathered.stdout)
    got = {f"{kind}-{i}": text for kind in results for i, text in enumerate(results[kind])}
    assert [job.tag for job in planned if got[job.tag] != job.expected] == []
    assert peak.most == len(planned), f"only {peak.most} answers were open at once"
    record(planned, seconds, peak.most)


def record(planned: list, seconds: float, peak: int) -> None:
    chunks = CHUNKS * len(planned)
    chars = sum(len(job.expected) for job in planned)
    rows = [["answers (20 %%chat --background, 15 panel, 15 API)", str(len(planned))],
            ["chunks per answer", f"{CHUNKS:,}"],
            ["answers streaming at once (peak)", str(peak)],
            ["complete, in order, nothing lost or repeated", f"{len(planned)}/{len(planned)}"],
            ["wall time, first cell to last chunk", f"{seconds:.1f} s"],
            ["chunks per second through the kernel", f"{chunks / seconds:,.0f}"],
            ["characters per second", f"{chars / seconds:,.0f}"]]
    write_section("load", f"## Load\n\nMeasured on {machine()}; the emulator paces each "
                  f"answer at {DELAY * 1000:g} ms per chunk.\n\n"
                  + markdown_table(["figure", "value"], rows))
