"""The fault table every reliability test shares, the calls that run a row
against the emulator, leak checks, and the writer of the reliability report
(docs/reliability.md, written only when asked: see ``write_section``).

A row names one fault (an emulator directive, or a server that is not
there), what each provider must make of it (a ``ChatError`` class, or None
for a complete answer) and how much of the answer must be kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

import aiohttp
import pytest

from ipychat import errors
from ipychat.emulator import DEMO_COOKIES, EmulatorServer, base_url_for
from ipychat.emulator.faults import Faults, parse_directives
from ipychat.emulator.reply import answer_pieces
from ipychat.providers import get_provider
from ipychat.targets import OA_COOKIE
from tests.support.kernel import Kernel

PROVIDERS = ("cromicle", "openassistant", "vitalentum", "lockchat", "openai", "ollama",
             "anthropic")
#: Models the emulator knows; the others send none or their default.
MODELS = {"lockchat": "gpt-3.5-turbo", "openai": "emulator", "ollama": "emulator",
          "anthropic": "claude-test"}
API_KEY = "sk-test-matrix-0123456789"
#: Stands for the server's own words in an error body; the error must quote them.
SERVER_WORDS = "upstream says no"
#: Seconds a stalled server waits; far beyond STALL_TIMEOUT, far below a test's limit.
STALL = 5
STALL_TIMEOUT = 0.5
UNRESOLVABLE = "http://ipychat-matrix.invalid"
STATUS_ERRORS = {
    400: errors.HTTPStatusError, 401: errors.AuthenticationRequired,
    403: errors.AuthenticationRequired, 404: errors.HTTPStatusError, 429: errors.RateLimited,
    500: errors.HTTPStatusError, 502: errors.HTTPStatusError, 503: errors.HTTPStatusError,
}
WITH_END_MARKER = ("vitalentum", "lockchat", "openai", "ollama", "anthropic")


def label(name: str) -> str:
    return get_provider(name).__name__


def model_seen(name: str) -> Optional[str]:
    """The model the emulator sees (and quotes in its answer)."""
    if name in ("cromicle", "vitalentum"):
        return None  # not part of those protocols
    return MODELS.get(name) or get_provider(name).model


def user(prompt: str) -> List[dict]:
    return [{"role": "user", "content": prompt}]


#: The variable a kernel's %%chat --api-key-env names (Anthropic needs a key).
KEY_ENV = "IPYCHAT_MATRIX_KEY"


def kernel_env() -> dict:
    """A kernel that answers only where a cell points it: no demo, no keys but ours."""
    return {"IPYCHAT_DEMO": "0", "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "",
            KEY_ENV: API_KEY, "OPENASSISTANT_SESSION_TOKEN": DEMO_COOKIES[OA_COOKIE]}


def chat_cell(name: str, url: str, prompt: str, *options: str) -> str:
    """A %%chat cell asking ``prompt`` of provider ``name`` at ``url``."""
    extra = [f"--api-key-env {KEY_ENV}"] if name == "anthropic" else []
    extra += [f"-m {MODELS[name]}"] if name in MODELS else []
    body = prompt.replace("{", "{{").replace("}", "}}")  # the cell interpolates {names}
    return f"%%chat -p {name} --base-url {url} {' '.join([*extra, *options])}\n{body}"


def call_kwargs(name: str, emulator_url: str, **extra) -> dict:
    """Keyword arguments that point provider ``name`` at the emulator."""
    kwargs = {"base_url": base_url_for(name, emulator_url), "timeout": 30}
    if name == "openassistant":
        kwargs["cookies"] = dict(DEMO_COOKIES)
    if name == "anthropic":
        kwargs["api_key"] = API_KEY
    return {**kwargs, **extra}


@dataclass(frozen=True)
class Fault:
    """One row of the matrix."""

    id: str
    title: str
    directive: str = ""
    #: "emulator", "refused" (a closed port) or "unresolvable" (a .invalid host).
    where: str = "emulator"
    #: provider -> expected error class (None: the answer completes); "*" for the rest.
    expect: Dict[str, Optional[type]] = field(default_factory=dict)
    #: What the caller must hold when it ends: "none", "first" (piece) or "all".
    kept: str = "none"
    timeout: float = 30.0
    #: Retries allowed (each other row maps one failure: 0), and how many
    #: retry lines the caller must see (None: not counted).
    retries: int = 0
    retry_lines: Optional[int] = None

    def prompt(self) -> str:
        return f"hi [[emulator {self.directive}]]" if self.directive else "hi"

    def error_for(self, name: str) -> Optional[type]:
        return self.expect.get(name, self.expect.get("*"))

    def kept_text(self, name: str) -> str:
        """The text a caller holds at the end: what the emulator sent before the fault."""
        if self.kept == "none":
            return ""
        faults = Faults(**parse_directives(self.prompt()))
        pieces = answer_pieces(name, user(self.prompt()), model_seen(name), faults)
        return pieces[0] if self.kept == "first" else "".join(pieces)


def _status_rows() -> List[Fault]:
    rows = []
    for status, error in STATUS_ERRORS.items():
        json_body = '{"error": {"message": "%s", "type": "server_error"}}' % SERVER_WORDS
        rows.append(Fault(f"http-{status}-json", f"HTTP {status}, JSON body",
                          f"status={status} body='{json_body}'", expect={"*": error}))
        rows.append(Fault(f"http-{status}-text", f"HTTP {status}, text body",
                          f'status={status} body="{SERVER_WORDS}"', expect={"*": error}))
    return rows


CUT = errors.StreamCutShort
BAD = errors.MalformedStreamError
FAULTS: List[Fault] = _status_rows() + [
    Fault("refused", "connection refused", where="refused",
          expect={"*": errors.ConnectionFailed}),
    Fault("unresolvable", "unresolvable host", where="unresolvable",
          expect={"*": errors.ConnectionFailed}),
    Fault("drop", "reset mid-stream", "drop", expect={"*": CUT}, kept="first"),
    Fault("stall-first", f"no first byte within {STALL_TIMEOUT:g} s", f"stall_first={STALL}",
          expect={"*": errors.ChatTimeout}, timeout=STALL_TIMEOUT),
    Fault("stall-mid", f"stall mid-stream beyond {STALL_TIMEOUT:g} s", f"stall_mid={STALL}",
          expect={"*": errors.ChatTimeout}, kept="first", timeout=STALL_TIMEOUT),
    Fault("malformed", "malformed frame", "malformed", expect={"*": BAD}, kept="first"),
    Fault("unknown-event", "unknown event type", "unknown_event", kept="all"),
    Fault("error-event", "in-band error event", "error_event",
          expect={"cromicle": CUT, "*": errors.ProviderError}, kept="first"),
    Fault("invalid-utf8", "invalid UTF-8", "invalid_utf8", expect={"*": BAD}, kept="first"),
    Fault("big-line", "a 1 MB line", "big_line=1000000", kept="all"),
    Fault("empty", "empty body", "empty", expect={"*": CUT}),
    Fault("no-end", "no end marker", "no_end",
          expect={name: CUT for name in WITH_END_MARKER}, kept="all"),
    # Retries (2 allowed): before the first text only.
    Fault("retry-429", "HTTP 429, then an answer (2 retries)",
          "status=429 retry_after_ms=50 times=1", kept="all", retries=2, retry_lines=1),
    Fault("retry-503-spent", "HTTP 503 three times (2 retries)",
          "status=503 retry_after_ms=20", expect={"*": errors.HTTPStatusError}, retries=2,
          retry_lines=2),
    Fault("retry-reset", "reset before the first byte, then an answer (2 retries)",
          "reset times=1", kept="all", retries=2, retry_lines=1),
    Fault("retry-drop", "reset after the first text (2 retries)", "drop",
          expect={"*": CUT}, kept="first", retries=2, retry_lines=0),
]


def outcome_name(error: Optional[BaseException]) -> str:
    return "ok" if error is None else type(error).__name__


# -- servers that are not there --------------------------------------------------


class ClosedPort:
    """A 127.0.0.1 port bound but never listening: connecting is refused, and
    no other program can take the port while this holds it."""

    def __init__(self):
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()


@pytest.fixture(scope="module")
def emulator():
    """The emulator on 127.0.0.1, one for the module."""
    with EmulatorServer(delay=0) as server:
        yield server


@pytest.fixture(scope="module")
def closed():
    """A port that refuses connections, one for the module."""
    port = ClosedPort()
    yield port
    port.close()


@contextlib.contextmanager
def loaded_kernel():
    """A real kernel with ``%load_ext ipychat`` done, shut down on leaving."""
    kernel = Kernel(env=kernel_env())
    try:
        kernel.run("%load_ext ipychat")
        # The matrix compares whole outputs; the stats line (times vary) is
        # tested in test_reasoning_kernel.py.
        kernel.run("%config ChatMagics.stats = False")
        yield kernel
    finally:
        kernel.shutdown()


def base_url(row: Fault, name: str, emulator_url: str, closed: ClosedPort) -> str:
    root = {"emulator": emulator_url, "refused": closed.url, "unresolvable": UNRESOLVABLE}
    return base_url_for(name, root[row.where])


# -- leak checks -----------------------------------------------------------------


def _socket_inodes() -> Set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def client_sockets(port: int) -> int:
    """Open sockets of this process connected *to* ``port`` (the client side)."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            remote_port = int(cols[2].rsplit(":", 1)[1], 16)
            if remote_port == port and cols[9] in mine:
                count += 1
    return count


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Re-check ``predicate`` on each loop turn, at most ``timeout`` s.

    For state nothing announces (a kernel's fd table, the task set): a
    closed transport lets go of its socket a loop iteration or two later.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def unclosed_warnings(recorded) -> List[str]:
    return [str(w.message) for w in recorded
            if issubclass(w.category, ResourceWarning) or "Unclosed" in str(w.message)]


# -- the reliability report (docs/reliability.md) ---------------------------------
# Every run measures and asserts; only a run that names a report file writes
# its figures there, so a plain test run leaves the checkout as it found it.
# ``python -m bench.reliability`` sets the variable to docs/reliability.md.

REPORT_ENV = "IPYCHAT_RELIABILITY_REPORT"
SECTIONS = ("fault-matrix", "fault-matrix-kernel", "security", "xss", "soak", "load")
HEADER = """# Reliability and security

Written by the tests (`python -m bench.reliability` runs
tests/test_fault_matrix.py tests/test_fault_matrix_kernel.py tests/test_soak.py
tests/test_load.py tests/test_xss_browser.py with `IPYCHAT_RELIABILITY_REPORT`
naming this file); each section is replaced by the test module that
measures it. Tables are deterministic; the soak and load figures are
measurements of the last run on the machine named there.
"""


def report_path() -> Optional[Path]:
    """The file named by $IPYCHAT_RELIABILITY_REPORT, or None: write nothing."""
    value = os.environ.get(REPORT_ENV, "").strip()
    return Path(value) if value else None


def write_section(key: str, body: str) -> Optional[Path]:
    """Replace section ``key`` of the report, keeping the others, if a report
    is named (``report_path``); return the file written, or None."""
    path = report_path()
    if path is None:
        return None
    text = path.read_text() if path.exists() else HEADER
    for name in SECTIONS:
        if f"<!-- {name}:start -->" not in text:
            text += f"\n<!-- {name}:start -->\n_Not measured yet._\n<!-- {name}:end -->\n"
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.DOTALL)
    block = f"<!-- {key}:start -->\n{body.strip()}\n<!-- {key}:end -->"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pattern.sub(lambda _: block, text))
    return path


def machine() -> str:
    """Where figures were measured (they mean little without it)."""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}")


def markdown_table(head: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
