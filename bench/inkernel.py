"""Measuring cells in a real kernel (``tests.support.kernel``): CPU time taken
inside the kernel, the display messages a cell caused, and when they arrived.

A measured cell prints one ``@@BENCH {json}`` line; ``run`` finds it. The
kernel's CPU is taken twice: ``time.process_time()`` around the cell body
(inside the kernel, as a user would), and from ``/proc/PID/stat`` around the
whole execution (every thread, including IOPub sends that finish after the
body; 10 ms ticks).
"""

from __future__ import annotations

import json
import os
import queue
import time
from dataclasses import dataclass, field
from typing import List, Optional

from tests.support.kernel import Kernel

MARK = "@@BENCH "
ENV = {"IPYCHAT_DEMO": "0", "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
MESSAGES = [{"role": "user", "content": "hi"}]
#: Seconds an interrupted cell gets to end before its kernel is given up.
INTERRUPT_GRACE = 30


def start() -> Kernel:
    """A fresh kernel (this interpreter) with ``%load_ext ipychat`` done."""
    kernel = Kernel(env=ENV)
    try:
        run(kernel, "%load_ext ipychat\nprint(" + repr(MARK + "{}") + ")")
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def timed(body: str) -> str:
    """``body`` (top-level await allowed) with CPU and wall time printed after it."""
    return "\n".join([
        "import time as _bt, json as _bj",
        "_bt0, _bw0 = _bt.process_time(), _bt.monotonic()",
        body,
        "_bcpu, _bwall = _bt.process_time() - _bt0, _bt.monotonic() - _bw0",
        f"print({MARK!r} + _bj.dumps({{'cpu': _bcpu, 'wall': _bwall, 'chars': len(_bench_out)}}))",
    ])


def chat_call(base: str, fmt: str = "markdown", provider: str = "lockchat") -> str:
    """``%%chat`` exactly as its input transformer rewrites it: ``await`` of the magic.

    ``--no-history``: repeated runs must not send ever longer histories.
    ``--no-stats``: the baselines show the answer only, so the output compared is the same.
    """
    line = (f"-p {provider} --base-url {base} --no-history --no-stats --format {fmt} "
            "-o _bench_out")
    return f"await get_ipython().run_cell_magic('chat', {line!r}, 'hi')"


def chat_cell(base: str, fmt: str = "markdown", provider: str = "lockchat") -> str:
    return timed(chat_call(base, fmt, provider))


def _stream_expr(base: str, provider: str) -> str:
    return (f"__import__('ipychat.targets').targets.resolve({provider!r}, base_url={base!r}, "
            f"demo=False).stream({MESSAGES!r})")


def once_cell(base: str, fmt: str = "markdown", provider: str = "lockchat") -> str:
    return timed(once_body(base, fmt, provider))


def once_body(base: str, fmt: str = "markdown", provider: str = "lockchat") -> str:
    """The same stream through the same provider stack, then the final text shown once."""
    return "\n".join([
        "from ipychat.render import bundle as _bb",
        "from IPython.display import display as _bd",
        f"_bench_out = ''.join([_e.text async for _e in {_stream_expr(base, provider)} "
        "if _e.kind == 'text'])",
        f"_bd(_bb(_bench_out, {fmt!r}), raw=True, display_id=True)",
    ])


def display_cell(fmt: str = "markdown") -> str:
    """Only showing ``_bench_out`` (left by a previous cell) once."""
    return timed("\n".join([
        "from ipychat.render import bundle as _bb",
        "from IPython.display import display as _bd",
        f"_bd(_bb(_bench_out, {fmt!r}), raw=True, display_id=True)",
    ]))


def naive_cell(base: str, fmt: str = "markdown") -> str:
    """The naive live view: ``update_display`` of the whole text on every SSE event.

    It decodes the stream itself, the 2023 seed way (``async for line``), so
    that it updates once per event whatever the grain of ipychat's providers.
    """
    body = {"model": "gpt-3.5-turbo", "messages": MESSAGES, "stream": True}
    return timed("\n".join([
        "import aiohttp as _ba, json as _bjs",
        "from ipychat.render import bundle as _bb",
        "from IPython.display import display as _bd, update_display as _bu",
        f"_bh = _bd(_bb('…', {fmt!r}), raw=True, display_id=True)",
        "_bench_out = ''",
        "async with _ba.ClientSession() as _bs:",
        f"    async with _bs.post({base + '/v1/chat/completions'!r}, json={body!r}) as _br:",
        "        async for _bl in _br.content:",
        "            if _bl.startswith(b'data: ') and not _bl.startswith(b'data: [DONE]'):",
        "                _bdelta = _bjs.loads(_bl[6:])['choices'][0]['delta']",
        "                _bench_out += _bdelta.get('content') or ''",
        f"                _bu(_bb(_bench_out, {fmt!r}), raw=True, display_id=_bh.display_id)",
    ]))


@dataclass
class Outcome:
    """What one execution caused, summed up as messages arrive.

    Messages are not kept: a slow live view can send gigabytes of updates.
    ``*_bytes`` are the UTF-8 bytes of the MIME data (text/plain, text/markdown).
    """

    result: Optional[dict] = None  # the cell's @@BENCH line (cpu, wall, chars, ...)
    status: str = ""  # of the execute_reply
    timed_out: bool = False  # interrupted after the time limit
    abandoned: bool = False  # not idle even after the interrupt: shut the kernel down
    proc_cpu: float = 0.0  # /proc ticks around the whole execution
    updates: int = 0
    update_bytes: int = 0
    display_bytes: int = 0  # display_data and update_display_data
    displays: int = 0  # display_data: new outputs (a huge answer goes on in new ones)
    first_update_at: Optional[float] = None  # time.monotonic() in this process
    last_text: str = ""
    stdout: str = ""
    errors: List[str] = field(default_factory=list)

    def take(self, msg: dict) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind in ("display_data", "update_display_data"):
            size = sum(len(v.encode()) for v in content["data"].values() if isinstance(v, str))
            self.display_bytes += size
            self.last_text = content["data"].get("text/plain", "")
            self.displays += kind == "display_data"
            if kind == "update_display_data":
                self.updates += 1
                self.update_bytes += size
                if self.first_update_at is None:
                    self.first_update_at = time.monotonic()
        elif kind == "stream" and content["name"] == "stdout":
            self.stdout += content["text"]
        elif kind == "error":
            self.errors.append(" ".join(content["traceback"])[-2000:])

    def found(self) -> Optional[dict]:
        lines = [line for line in self.stdout.splitlines() if line.startswith(MARK)]
        return json.loads(lines[-1][len(MARK):]) if lines else None


def proc_cpu(kernel: Kernel) -> float:
    """User + system CPU seconds of the kernel process so far (every thread)."""
    pid = kernel.km.provisioner.pid
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def execute(kernel: Kernel, code: str, timeout: float = 600) -> Outcome:
    """Run ``code``; past ``timeout`` s interrupt it and say so (``timed_out``).

    If it is not idle ``INTERRUPT_GRACE`` s later, the outcome is ``abandoned``.
    """
    before = proc_cpu(kernel)
    msg_id = kernel.kc.execute(code)
    outcome = Outcome()
    try:
        _drain(kernel, msg_id, outcome, time.monotonic() + timeout)
    except TimeoutError:
        outcome.timed_out = True
        kernel.interrupt()
        try:
            _drain(kernel, msg_id, outcome, time.monotonic() + INTERRUPT_GRACE)
        except TimeoutError:
            # Still busy (or a backlog of huge updates): the caller must discard it.
            outcome.abandoned = True
            outcome.proc_cpu = proc_cpu(kernel) - before
            return outcome
    while True:
        reply = kernel.kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    outcome.status = reply["content"]["status"]
    outcome.proc_cpu = proc_cpu(kernel) - before
    outcome.result = outcome.found()
    return outcome


def _drain(kernel: Kernel, msg_id: str, outcome: Outcome, deadline: float) -> None:
    """Take this execution's IOPub messages until the kernel is idle again."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        try:
            msg = kernel.kc.get_iopub_msg(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return
            continue
        outcome.take(msg)


def run(kernel: Kernel, code: str, timeout: float = 600) -> Outcome:
    """``execute`` that insists on success and on the cell's @@BENCH result."""
    outcome = execute(kernel, code, timeout)
    if outcome.timed_out or outcome.status != "ok" or outcome.errors or outcome.result is None:
        raise RuntimeError(f"measured cell failed (timed out: {outcome.timed_out}, "
                           f"status {outcome.status!r}): {outcome.errors or outcome.stdout[-300:]}")
    return outcome
