"""A real Jupyter kernel for tests, started with this interpreter.

``Kernel.run(code)`` executes a cell and returns every IOPub message it
caused, in order, until the kernel is idle again; ``on_message`` sees each as
it arrives (e.g. to interrupt the kernel mid-answer). All waits are bounded.
``loaded_kernel()`` is one with ipychat loaded, shut down however the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

SPEC_NAME = "ipychat-test"
#: The checkout these tests belong to: kernels import ipychat from here, not
#: from wherever the package happens to be installed.
CHECKOUT = str(Path(__file__).resolve().parents[2])


def this_checkout(env: dict) -> dict:
    """``env`` with this checkout first on ``PYTHONPATH``."""
    paths = [CHECKOUT, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _spec_dir() -> str:
    root = Path(tempfile.mkdtemp(prefix="ipychat-kernels-"))
    spec = root / SPEC_NAME
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "ipychat test", "language": "python"}))
    return str(root)


@dataclass
class Execution:
    messages: List[dict] = field(default_factory=list)
    reply: Optional[dict] = None

    def of_type(self, *kinds: str) -> List[dict]:
        return [m for m in self.messages if m["msg_type"] in kinds]

    @property
    def updates(self) -> List[dict]:
        return self.of_type("update_display_data")

    @property
    def errors(self) -> List[dict]:
        return self.of_type("error")

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream")
                       if m["content"]["name"] == "stdout")

    def last_text(self, mime: str = "text/plain") -> str:
        """The text of the last display or update message."""
        shown = self.of_type("display_data", "update_display_data")
        return shown[-1]["content"]["data"][mime] if shown else ""

    def outputs(self, mime: str = "text/plain") -> List[str]:
        """What each output shows in the end, in order (a huge answer fills several)."""
        final = {}
        for msg in self.of_type("display_data", "update_display_data"):
            key = msg["content"].get("transient", {}).get("display_id") or id(msg)
            final[key] = msg["content"]["data"].get(mime, "")
        return list(final.values())


class Kernel:
    def __init__(self, env: Optional[dict] = None):
        self.km = KernelManager(kernel_name=SPEC_NAME,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[_spec_dir()]))
        # A private IPYTHONDIR: test cells must not land in the user's history.
        ipython_dir = tempfile.mkdtemp(prefix="ipychat-ipython-")
        self.km.start_kernel(env=this_checkout({**os.environ, "IPYTHONDIR": ipython_dir,
                                                **(env or {})}))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60,
            on_message: Optional[Callable[[dict], None]] = None) -> Execution:
        msg_id = self.kc.execute(code)
        done = Execution()
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next_iopub(deadline)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
                continue
            done.messages.append(msg)
            if on_message is not None:
                on_message(msg)
        done.reply = self.reply_to(msg_id, max(1, deadline - time.monotonic()))
        return done

    def reply_to(self, msg_id: str, timeout: float = 60) -> dict:
        """The shell reply to ``msg_id``. Others are skipped: ``wait_for_ready``
        may leave a second kernel_info reply behind when the kernel starts slowly,
        and every later reply would then be taken for the one before it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from the kernel in time")
            try:
                msg = self.kc.get_shell_msg(timeout=left)
            except queue.Empty:
                raise TimeoutError("no reply from the kernel in time") from None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def listen(self, predicate: Callable[[dict], bool], timeout: float = 30) -> List[dict]:
        """Collect IOPub messages (any parent) until ``predicate(msg)`` holds."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            msg = self._next_iopub(deadline)
            seen.append(msg)
            if predicate(msg):
                return seen

    def _next_iopub(self, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("kernel did not finish in time")
        try:
            return self.kc.get_iopub_msg(timeout=left)
        except queue.Empty:
            raise TimeoutError("kernel did not finish in time") from None

    def value(self, expression: str):
        """``repr`` of an expression, evaluated in the kernel."""
        reply = self.run(f"print(repr({expression}))")
        return reply.stdout.strip()

    def comm_send(self, comm_id: str, content: dict) -> str:
        """A widget's custom message from the "page" (as a front end sends it);
        returns its msg_id, the parent of what the kernel does about it."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id,
                                               "data": {"method": "custom", "content": content}})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


#: No keys and no demo mode: a test points the kernel at its own servers.
NO_KEYS = {"IPYCHAT_DEMO": "0", "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}


@contextlib.contextmanager
def loaded_kernel(*setup: str, **env: str) -> Iterator[Kernel]:
    """A kernel with ``%load_ext ipychat`` and each ``setup`` cell run; its
    environment is ``NO_KEYS`` updated by ``env``. Shut down on leaving."""
    k = Kernel(env={**NO_KEYS, **env})
    try:
        k.run("%load_ext ipychat")
        for cell in setup:
            k.run(cell)
        yield k
    finally:
        k.shutdown()
