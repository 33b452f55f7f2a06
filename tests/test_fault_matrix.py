"""The fault matrix through the Python API: every fault in
``tests/support/matrix.py`` against every provider, on the built-in emulator.

Each cell must end in a single-line ``ChatError`` naming the provider (or a
complete answer where that is right), hold exactly the text streamed so far,
and leave nothing behind: no client socket, no task, no unclosed-session
warning, no request the server did not see end, no OpenAssistant chat left
open. The observed table goes to the reliability report
(docs/reliability.md, refreshed by ``python -m bench.reliability``; a plain
test run writes nothing). Then the security rows: redirects are not
followed, proxy passwords never shown, the emulator binds 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
import threading
import traceback
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.emulator import EmulatorServer
from ipychat.emulator.__main__ import parse_args
from ipychat.providers import ProviderChain, get_provider, pool
from ipychat.targets import resolve
from tests.support.matrix import (FAULTS, MODELS, PROVIDERS, SERVER_WORDS,
                                  STALL_TIMEOUT, UNRESOLVABLE, base_url,
                                  call_kwargs, client_sockets, closed, emulator,
                                  label, markdown_table,
                                  outcome_name, unclosed_warnings, until, user, write_section)

pytestmark = pytest.mark.timeout(60)
__all__ = ["closed", "emulator"]  # fixtures, used by name below
OUTCOMES = {}  # (row id, provider) -> what happened, for the docs table
SECURITY = {}  # check -> what happened


@pytest.fixture(scope="module", autouse=True)
def results_table():
    yield
    if len(OUTCOMES) == len(FAULTS) * len(PROVIDERS):  # a filtered run writes nothing
        write_section("fault-matrix", matrix_section())
    if len(SECURITY) == 5:
        rows = [[check, SECURITY[check]] for check in sorted(SECURITY)]
        write_section("security", "## Security checks\n\n"
                      + markdown_table(["check", "result"], rows))


def matrix_section() -> str:
    rows = [[row.title, *(OUTCOMES[row.id, name] for name in PROVIDERS)] for row in FAULTS]
    return ("## Fault matrix (Python API)\n\n" + INTRO
            + markdown_table(["fault", *PROVIDERS], rows) + "\n\n" + NOTES)


INTRO = ("`tests/test_fault_matrix.py`, against the built-in emulator. Cells: the `ChatError` "
         "class raised, or `ok` for a complete answer. In every cell the caller also holds "
         "exactly the text streamed before the fault, the error is one line starting with "
         "the provider's name, and nothing leaks: no client socket, no task, no "
         "unclosed-session warning, no request the server did not see end, no "
         "OpenAssistant chat left undeleted.\n\n")
NOTES = ("- Cromicle streams raw text: it has no in-band error (the emulator drops the "
         "connection instead) and, like OpenAssistant, no end marker, so a stream that just "
         "stops is a complete answer there.\n"
         "- An empty body is an error for every provider, never a silent empty answer.\n")

async def run(name: str, prompt: str, **kwargs):
    """(texts received, error raised or None) for one call."""
    texts = []
    chunks = get_provider(name).create_async_generator(MODELS.get(name), user(prompt), **kwargs)
    try:
        async for text in chunks:
            texts.append(text)
    except errors.ChatError as err:
        return texts, err
    return texts, None


def assert_one_line(err: errors.ChatError, name: str) -> None:
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    assert text.startswith(f"{label(name)}: "), text
    assert err.provider == label(name)


async def assert_nothing_left(emulator, port: int, baseline, recwarn) -> None:
    # A response read to its end leaves its connection idle in the loop's pool
    # (tests/test_connections.py: a half-read one is closed by the call itself).
    await pool.close_current()
    assert await until(lambda: client_sockets(port) == 0), "a client socket stayed open"
    assert await until(lambda: asyncio.all_tasks() <= baseline), asyncio.all_tasks() - baseline
    gc.collect()
    assert unclosed_warnings(recwarn) == []
    ended = lambda: all(r.finished or r.disconnected or r.dropped for r in emulator.requests)
    assert await asyncio.to_thread(emulator.wait_for, ended, 10), "a request never ended"
    chats = emulator.state.extra.get("openassistant")
    assert chats is None or await asyncio.to_thread(emulator.wait_for, lambda: not chats.chats, 10)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("row", FAULTS, ids=[row.id for row in FAULTS])
async def test_fault(emulator, closed, recwarn, row, name):
    emulator.reset()
    baseline = asyncio.all_tasks()
    url = base_url(row, name, emulator.url, closed)
    kwargs = call_kwargs(name, emulator.url, base_url=url, timeout=row.timeout)
    texts, err = await run(name, row.prompt(), **kwargs)
    OUTCOMES[row.id, name] = outcome_name(err)
    assert type(err) is (row.error_for(name) or type(None)), err
    if err is not None:
        assert_one_line(err, name)
    if row.id.startswith("http-"):
        assert f"HTTP {row.id.split('-')[1]}: {SERVER_WORDS}" in str(err)
    await assert_nothing_left(emulator, urlsplit(url).port or 80, baseline, recwarn)
    assert "".join(texts) == row.kept_text(name)


async def test_a_hanging_resolver_is_bounded_by_the_timeout(monkeypatch):
    """A name lookup that never returns (a broken resolver) ends with the timeout."""
    release, lookup = threading.Event(), socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            release.wait(30)  # released below, so the worker thread ends with the test
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        texts, err = await asyncio.wait_for(run("cromicle", "hi", base_url=UNRESOLVABLE,
                                                timeout=STALL_TIMEOUT), 20)
    finally:
        release.set()
    assert texts == [] and type(err) is errors.ChatTimeout
    assert_one_line(err, "cromicle")


# -- security ----------------------------------------------------------------------


def redirecting(to: str):
    async def handler(request, rec):
        return web.Response(status=302, headers={"Location": to + request.path_qs})

    return handler


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("elsewhere", ["another port", "another host"])
async def test_a_redirect_elsewhere_is_not_followed(make_server, closed, name, elsewhere):
    other = make_server([("*", "/{tail:.*}", redirecting("unused"))])
    port = other.url.rsplit(":", 1)[1]
    to = other.url if elsewhere == "another port" else f"http://127.0.0.2:{port}"
    server = make_server([("*", "/{tail:.*}", redirecting(to))])
    texts, err = await run(name, "hi", **call_kwargs(name, server.url))
    assert texts == [] and type(err) is errors.HTTPStatusError and err.status == 302
    assert_one_line(err, name)
    assert "does not follow redirects" in str(err)
    assert len(server.requests) == 1 and other.requests == []
    SECURITY[f"302 to {elsewhere}"] = "not followed: " + type(err).__name__


PROXY_SECRET = "pr0xy-s3cret"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_proxy_password_never_shows(emulator, closed, name):
    proxy = f"http://user:{PROXY_SECRET}@127.0.0.1:{closed.port}"
    texts, err = await run(name, "hi", **call_kwargs(name, emulator.url, proxy=proxy))
    assert type(err) is errors.ConnectionFailed and "through the proxy" in str(err)
    assert_one_line(err, name)
    shown = [str(err), repr(err), repr(err.args), *traceback.format_exception(err)]
    assert not [text for text in shown if PROXY_SECRET in text]
    SECURITY["proxy password in errors"] = "never shown"


def test_secrets_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("OPENASSISTANT_SESSION_TOKEN", "cookie-s3cret")
    proxy = f"http://user:{PROXY_SECRET}@127.0.0.1:9"
    target = resolve("openassistant,anthropic", proxy=proxy, demo=False)
    chain = ProviderChain([(leg.provider, leg.kwargs) for leg in target.legs])
    for shown in (repr(target), repr(target.legs), repr(chain)):
        assert "cookie-s3cret" not in shown and PROXY_SECRET not in shown, shown
    SECURITY["cookies and proxy passwords in reprs"] = "never shown"


def test_the_emulator_binds_127_0_0_1_by_default():
    with EmulatorServer(delay=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server._runner.addresses[0][0] == "127.0.0.1"
    assert parse_args([]).host == "127.0.0.1"
    SECURITY["emulator bind address (EmulatorServer, CLI)"] = "127.0.0.1"


def test_the_emulator_cli_is_not_reachable_on_other_addresses():
    cli = subprocess.Popen([sys.executable, "-m", "ipychat.emulator"], stdout=subprocess.PIPE,
                           text=True)
    try:
        url = cli.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):  # 127.0.0.2 is loopback too, but not bound
            socket.create_connection(("127.0.0.2", port), timeout=5).close()
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        cli.terminate()
        cli.wait(10)

