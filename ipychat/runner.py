"""How a chat coroutine runs: on the kernel's own loop, or on a private one.

In ipykernel, cell code already runs inside the kernel's asyncio loop, so a
synchronous magic cannot drive that loop. Instead ``%%chat`` returns a
coroutine and an ``input_transformers_post`` hook turns the transformed line
``get_ipython().run_cell_magic('chat', ...)`` into ``await ...``: ipykernel
then runs the cell as a top-level-await cell on its loop, the output updates
live, the cell stays busy until the answer is done, and Interrupt cancels
the task (ipykernel's ``_cancel_on_sigint``), which closes the connection.

Where that is not possible (terminal IPython, ``%autoawait off``), the
coroutine runs on the private loop thread (``loopthread``) while this thread
waits in short slices, so Ctrl-C still lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import threading
from typing import Callable, List, TypeVar

T = TypeVar("T")

# %%chat cells, and %chat fix (which streams an answer like a cell).
_MAGIC_CALL = re.compile(r"^(\s*)(get_ipython\(\)\.run_cell_magic\(['\"]chat['\"],"
                         r"|get_ipython\(\)\.run_line_magic\(['\"]chat['\"], ['\"]fix\b)")


def in_kernel(shell) -> bool:
    """Whether ``shell`` is a Jupyter kernel's shell (display updates work there)."""
    return getattr(shell, "kernel", None) is not None


def can_await(shell) -> bool:
    """Whether a ``%%chat`` cell can be awaited on the kernel's running loop now."""
    if not (in_kernel(shell) and getattr(shell, "autoawait", False)):
        return False
    try:
        from IPython.core.async_helpers import _asyncio_runner
    except ImportError:  # pragma: no cover  (IPython < 7)
        return False
    if getattr(shell, "loop_runner", None) is not _asyncio_runner:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class AwaitChatCells:
    """``input_transformers_post`` hook: ``await`` the ``%%chat`` magic call.

    It only rewrites when the cell will run on a loop that can await it, so
    the magic's return value (a coroutine there, None elsewhere) matches.
    """

    def __init__(self, shell):
        self.shell = shell

    def __call__(self, lines: List[str]) -> List[str]:
        if not lines or not can_await(self.shell):
            return lines
        return [_MAGIC_CALL.sub(r"\1await \2", line, count=1) for line in lines]


def install(shell) -> None:
    hooks = shell.input_transformers_post
    if not any(isinstance(hook, AwaitChatCells) for hook in hooks):
        hooks.append(AwaitChatCells(shell))


def uninstall(shell) -> None:
    shell.input_transformers_post[:] = [
        hook for hook in shell.input_transformers_post if not isinstance(hook, AwaitChatCells)
    ]


#: How often the loop wakes so that a pending SIGINT handler runs.
WAKE_INTERVAL = 0.1


@contextlib.contextmanager
def wake_for_signals():
    """Wake the main thread's loop every ``WAKE_INTERVAL`` s while the block runs.

    Measured on ipykernel 7.4: the kernel's other threads often receive the
    SIGINT of Kernel > Interrupt; Python then runs ipykernel's handler (which
    cancels the cell) only when the main thread next runs bytecode. While a
    server stalls, the loop sleeps in epoll and the interrupt never lands.
    A periodic no-op timer bounds that delay.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    handle = None

    def tick():
        nonlocal handle
        handle = loop.call_later(WAKE_INTERVAL, tick)

    tick()
    try:
        yield
    finally:
        handle.cancel()


def interruptible(call: Callable[[], T]) -> T:
    """``call()`` with Python's own SIGINT handler while it runs (main thread only).

    A plain function called from an awaited cell blocks the loop, so the
    kernel's handler, which only schedules a cancel on that loop, could not
    stop it: Interrupt would wait for the function to return. With the
    default handler the function gets a ``KeyboardInterrupt`` where it runs
    (a ``time.sleep`` wakes for it), which the caller must catch: one that
    leaves an asyncio task stops the loop itself. The kernel's handler is
    back as soon as the call ends, however it ends.
    """
    if threading.current_thread() is not threading.main_thread():
        return call()  # signals land on the main thread only (a panel's subshell)
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or (previous is signal.SIG_IGN and not _kernel_between_requests()):
        return call()  # set outside Python, or ignored on purpose
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return call()
        finally:
            signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, previous)  # it may have come before the finally ran
        raise


def _kernel_between_requests() -> bool:
    """Whether SIGINT is ignored because ipykernel ignores it between requests
    (``IPKernelApp.init_signal``). A panel's answer runs then, after the comm
    message that asked for it was handled: Kernel > Interrupt is the only way
    to stop a plain tool that blocks the kernel, so it must reach the tool."""
    if "ipykernel" not in sys.modules:  # never import it only to ask
        return False
    from ipykernel.kernelapp import IPKernelApp

    return IPKernelApp.initialized()


def background_tasks() -> set:
    """Strong references to running ``--background`` tasks (asyncio keeps weak ones)."""
    return _tasks


_tasks: set = set()


def start_background(coro) -> asyncio.Task:
    """Run ``coro`` as a task on this thread's running loop; keep it referenced."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task
