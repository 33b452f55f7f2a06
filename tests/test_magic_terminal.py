"""Terminal IPython (a real `ipython` process): the answer streams to stdout
as it arrives, and Ctrl-C cancels the request with one line."""

import asyncio
import os
import signal
import subprocess
import sys
import threading

import pytest
from aiohttp import web

pytestmark = pytest.mark.timeout(120)


def held_answer(hold):
    async def handler(request, rec):
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"streamed-before-the-end ")
        await hold.wait()
        await response.write(b"and-the-rest")
        await response.write_eof()
        return response

    return handler


def start_ipython(url, extra=""):
    cell = f"%%chat -p cromicle --base-url {url} {extra}\\nhi"
    code = f"get_ipython().run_line_magic('load_ext', 'ipychat'); get_ipython().run_cell('{cell}')"
    env = {**os.environ, "IPYCHAT_DEMO": "0", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor",
         "--HistoryManager.enabled=False", "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


class Reader:
    """Collects a process's output in a thread; ``wait_for`` is bounded."""

    def __init__(self, stream):
        self.text, self._changed = "", threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for chunk in iter(lambda: stream.read1(4096), b""):
            with self._changed:
                self.text += chunk.decode("utf-8", "replace")
                self._changed.notify_all()

    def wait_for(self, needle, timeout=30):
        with self._changed:
            return self._changed.wait_for(lambda: needle in self.text, timeout)


@pytest.fixture
def held_ipython(make_server):
    """A terminal IPython streaming an answer the server holds open until ``hold`` is set."""
    hold = asyncio.Event()
    server = make_server([("POST", "/chat", held_answer(hold))])
    proc = start_ipython(server.url)
    try:
        yield hold, server, proc, Reader(proc.stdout)
    finally:
        proc.kill()


def test_text_reaches_stdout_before_the_answer_ends(held_ipython):
    hold, server, proc, out = held_ipython
    assert out.wait_for("streamed-before-the-end"), out.text
    assert "and-the-rest" not in out.text
    server.call_soon(hold.set)
    assert proc.wait(30) == 0
    assert out.wait_for("streamed-before-the-end and-the-rest")


def test_ctrl_c_cancels_the_request_with_one_line(held_ipython):
    _, server, proc, out = held_ipython
    assert out.wait_for("streamed-before-the-end"), out.text
    proc.send_signal(signal.SIGINT)
    assert server.wait_for(lambda: server.requests[0].disconnected, timeout=10)
    assert out.wait_for("ChatError: interrupted"), out.text
    proc.wait(30)
    assert "(interrupted)" in out.text
    assert "Traceback" not in out.text and "Unclosed" not in out.text
