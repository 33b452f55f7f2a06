"""Kept-alive connections (``ipychat/providers/pool.py``), against real servers
on 127.0.0.1 that note each request's peer address: one peer per TCP
connection, so two requests with the same peer shared a connection.

A call read to its end leaves its connection to the next call on the same
loop; per-call state (keys, cookies, proxy, base URL) never travels with it;
a call cancelled, stopped, cut short or failed half-way closes its
connection before it returns; idle connections close after the keep-alive
time, when the loop shuts down, on ``%unload_ext ipychat`` and at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import warnings
from dataclasses import replace

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import Anthropic, Cromicle, Ollama, OpenAIChat, OpenAssistant, pool
from tests.support.matrix import client_sockets, until
from tests.support.server import stream_pieces
from tests.test_provider_anthropic import STOP as ANTHROPIC_STOP
from tests.test_provider_anthropic import text_delta
from tests.test_provider_base import DONE, MESSAGES, OA_COOKIES, WIRES, Wire, sse_chunk
from tests.test_provider_ollama import DONE as OLLAMA_DONE
from tests.test_provider_ollama import line as ollama_line

ALL_WIRES = {
    **WIRES,
    "openai": Wire(OpenAIChat, "/chat/completions", sse_chunk, end=DONE),
    "anthropic": Wire(Anthropic, "/v1/messages", text_delta, end=ANTHROPIC_STOP,
                      kwargs={"api_key": "sk-ant-test"}),
    "ollama": Wire(Ollama, "/api/chat", ollama_line, end=OLLAMA_DONE,
                   content_type="application/x-ndjson"),
}
all_wires = pytest.mark.parametrize("wire", list(ALL_WIRES.values()), ids=list(ALL_WIRES))
WAIT = 10  # seconds; a bound, never a pause


def noting_peer(handler):
    """``handler`` that first notes the request's peer address on its record."""

    async def wrapped(request, rec):
        rec.peer = request.transport.get_extra_info("peername")
        return await handler(request, rec)

    return wrapped


def answering(wire: Wire, texts, **options):
    async def handler(request, rec):
        return await stream_pieces(request, wire.pieces(texts), content_type=wire.content_type,
                                   **options)

    return handler


def serve_wire(make_server, wire: Wire, answer):
    routes = [("POST", wire.stream_path, answer), *wire.setup]
    return make_server([(method, path, noting_peer(h)) for method, path, h in routes])


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def peers(server) -> list:
    return [r.peer for r in server.requests]


async def ask(wire: Wire, server, **extra) -> str:
    return await wire.cls.create_async("some-model", MESSAGES, **wire.call(server, **extra))


# -- reuse ----------------------------------------------------------------------


@all_wires
async def test_a_call_read_to_its_end_leaves_its_connection_to_the_next(make_server, wire):
    server = serve_wire(make_server, wire, answering(wire, ["Hel", "lo"]))
    assert await ask(wire, server) == "Hello"
    assert await ask(wire, server) == "Hello"
    # OpenAssistant's five requests a call: all ten on the one connection too.
    assert len(server.requests) >= 2 and len(set(peers(server))) == 1, peers(server)
    assert client_sockets(port_of(server)) == 1


def ending_late(wire: Wire, texts, after: float | None):
    """The end marker now, the end of the body ``after`` s later (None: never)."""

    async def handler(request, rec):
        end = asyncio.Event()
        if after is not None:
            asyncio.get_running_loop().call_later(after, end.set)
        return await stream_pieces(request, wire.pieces(texts), content_type=wire.content_type,
                                   hold=end)

    return handler


@pytest.mark.parametrize("name", ["openai", "anthropic", "ollama"])
async def test_the_body_ending_just_after_the_end_marker_is_read_for_reuse(make_server, name):
    wire = ALL_WIRES[name]
    server = serve_wire(make_server, wire, ending_late(wire, ["ok"], 0.05))
    assert await ask(wire, server) == "ok"
    assert await ask(wire, server) == "ok"
    assert len(set(peers(server))) == 1


@pytest.mark.parametrize("name", ["openai", "anthropic", "ollama"])
async def test_a_body_that_never_ends_after_the_end_marker_is_not_waited_for(make_server, name):
    wire = ALL_WIRES[name]
    server = serve_wire(make_server, wire, ending_late(wire, ["ok"], None))
    started = asyncio.get_running_loop().time()
    assert await ask(wire, server) == "ok"
    assert asyncio.get_running_loop().time() - started < pool.DRAIN_SECONDS + 1
    assert server.wait_for(lambda: server.requests[0].disconnected, WAIT)
    assert client_sockets(port_of(server)) == 0


async def test_other_providers_on_the_same_loop_reuse_it_too(make_server):
    openai, lockchat = ALL_WIRES["openai"], ALL_WIRES["lockchat"]
    routes = [(openai.stream_path, openai), (lockchat.stream_path, lockchat)]
    server = make_server([("POST", path, noting_peer(answering(w, ["ok"]))) for path, w in routes])
    assert await ask(openai, server) == "ok"
    assert await ask(lockchat, server) == "ok"
    assert len(set(peers(server))) == 1


async def test_calls_at_once_each_get_their_own_connection_and_never_queue(make_server):
    # More than aiohttp's default cap of 100 per connector: each call used to
    # have its own connector, so none ever waited for a free connection.
    count, made = 120, {}
    wire = ALL_WIRES["cromicle"]

    async def held(request, rec):
        release = made.setdefault("release", asyncio.Event())  # on the server's loop
        if len(server.requests) == count:
            release.set()
        await release.wait()
        return await stream_pieces(request, [b"ok"])

    server = serve_wire(make_server, wire, held)
    answers = await asyncio.wait_for(asyncio.gather(*(ask(wire, server) for _ in range(count))),
                                     60)
    assert answers == ["ok"] * count and len(set(peers(server))) == count


# -- per-call state stays per call -----------------------------------------------


@pytest.mark.parametrize("name, header, value", [
    ("openai", "Authorization", "Bearer {}"), ("anthropic", "x-api-key", "{}")])
async def test_each_call_sends_its_own_key_on_a_shared_connection(make_server, monkeypatch,
                                                                  name, header, value):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    wire = ALL_WIRES[name]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    for key in ("sk-one", "sk-two", None):
        if key is None and name == "anthropic":
            continue  # Anthropic refuses to send a request without a key
        assert await ask(wire, server, api_key=key) == "ok"
    sent = [{k.lower(): v for k, v in r.headers.items()}.get(header.lower())
            for r in server.requests]
    keys = ["sk-one", "sk-two"] + ([] if name == "anthropic" else [None])
    assert sent == [value.format(k) if k else None for k in keys]
    assert len(set(peers(server))) == 1


async def test_each_call_sends_its_own_cookies_on_a_shared_connection(make_server):
    """OpenAssistant: call one's cookie, and a cookie the server set in call one,
    never reach call two, though both run on one connection."""
    wire = ALL_WIRES["openassistant"]

    async def new_chat(request, rec):
        reply = web.json_response({"id": "chat-1"})
        if len(server.requests) == 1:
            reply.set_cookie("server-set", "for-call-one-only")
        return reply

    setup = [("POST", "/api/chat", new_chat), *wire.setup[1:]]
    server = serve_wire(make_server, replace(wire, setup=setup), answering(wire, ["ok"]))
    first = {"__Secure-next-auth.session-token": "cookie-one"}
    second = {"__Secure-next-auth.session-token": "cookie-two"}
    assert await ask(wire, server, cookies=first) == "ok"
    calls = len(server.requests)
    assert await ask(wire, server, cookies=second) == "ok"
    cookies = [r.headers.get("Cookie", "") for r in server.requests]
    assert all("cookie-one" in c and "cookie-two" not in c for c in cookies[:calls])
    assert cookies[calls:] and all(c == "__Secure-next-auth.session-token=cookie-two"
                                   for c in cookies[calls:])
    assert "server-set" in cookies[calls - 1]  # call one did keep its own cookie
    assert len(set(peers(server))) == 1


async def test_a_proxy_and_its_credentials_keep_their_own_connections(make_server):
    wire = ALL_WIRES["cromicle"]
    # The proxy answers itself: aiohttp sends it absolute-form requests for http URLs.
    proxy = serve_wire(make_server, wire, answering(wire, ["via proxy"]))
    target = serve_wire(make_server, wire, answering(wire, ["direct"]))
    through = lambda user: proxy.url.replace("http://", f"http://{user}:secret@")  # noqa: E731
    asked = [await ask(wire, target, proxy=p) for p in
             (through("one"), None, through("two"), through("one"), None)]
    assert asked == ["via proxy", "direct", "via proxy", "via proxy", "direct"]
    auth = [r.headers.get("Proxy-Authorization") for r in proxy.requests]
    assert len(set(auth)) == 2 and auth[0] == auth[2] != auth[1]
    assert peers(proxy)[0] == peers(proxy)[2] != peers(proxy)[1]  # one per credentials
    assert [r.headers.get("Proxy-Authorization") for r in target.requests] == [None, None]
    assert len(set(peers(target))) == 1


async def test_each_call_goes_to_its_own_base_url(make_server):
    wire = ALL_WIRES["cromicle"]
    first = serve_wire(make_server, wire, answering(wire, ["first"]))
    second = serve_wire(make_server, wire, answering(wire, ["second"]))
    asked = [await ask(wire, server) for server in (first, second, first, second)]
    assert asked == ["first", "second", "first", "second"]
    assert len(first.requests) == len(second.requests) == 2


# -- a call that did not read to its end closes its connection ---------------------


async def stop_by_break(wire, server):
    agen = wire.cls.create_async_generator("some-model", MESSAGES, **wire.call(server))
    async with contextlib.aclosing(agen) as chunks:
        async for _ in chunks:
            break


async def stop_by_cancel(wire, server):
    got_text = asyncio.Event()

    async def consume():
        async for _ in wire.cls.create_async_generator("some-model", MESSAGES,
                                                       **wire.call(server)):
            got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def stop_by_timeout(wire, server):
    with pytest.raises(errors.ChatTimeout):
        await ask(wire, server, timeout=0.3)


async def stop_by_bad_chunk(wire, server):
    with pytest.raises(errors.MalformedStreamError):
        await ask(wire, server)


STOPS = {"break": (stop_by_break, b""), "cancel": (stop_by_cancel, b""),
         "stall": (stop_by_timeout, b""), "malformed": (stop_by_bad_chunk, b"data: {not json\n\n")}


@pytest.mark.parametrize("name", ["openai", "anthropic", "ollama", "cromicle", "lockchat"])
@pytest.mark.parametrize("stop", list(STOPS))
async def test_a_call_stopped_half_way_closes_its_connection(request, make_server, name, stop):
    wire = ALL_WIRES[name]
    if stop == "malformed" and name in ("cromicle", "ollama"):
        pytest.skip("raw text has no chunk to get wrong; NDJSON is covered by its own tests")
    stopping, extra = STOPS[stop]
    hold = asyncio.Event()  # never set: the server keeps the stream open

    async def half(request, rec):
        if len(server.requests) > 1:
            return await answering(wire, ["again"])(request, rec)
        pieces = [wire.frame("Hello"), extra] if extra else [wire.frame("Hello")]
        return await stream_pieces(request, pieces, content_type=wire.content_type, hold=hold)

    server = serve_wire(make_server, wire, half)
    await stopping(wire, server)
    # Blocking wait on purpose: the close must not depend on this loop running later.
    assert server.wait_for(lambda: server.requests[0].disconnected, WAIT)
    assert client_sockets(port_of(server)) == 0
    assert await ask(wire, server) == "again"
    assert peers(server)[1] != peers(server)[0]


async def test_a_stream_the_server_cuts_is_not_reused(make_server):
    wire = ALL_WIRES["openai"]

    async def cut(request, rec):
        if len(server.requests) > 1:
            return await answering(wire, ["again"])(request, rec)
        response = web.StreamResponse(headers={"Content-Type": wire.content_type})
        await response.prepare(request)
        await response.write(wire.frame("Hello"))
        request.transport.close()  # mid-body: no end marker, no chunked terminator
        return response

    server = serve_wire(make_server, wire, cut)
    with pytest.raises(errors.StreamCutShort):
        await ask(wire, server)
    assert client_sockets(port_of(server)) == 0
    assert await ask(wire, server) == "again"
    assert peers(server)[1] != peers(server)[0]


async def test_an_error_body_left_unread_closes_and_one_read_whole_is_reused(make_server):
    """A status error reads at most 64 KB of the body: a longer one closes the
    connection; a short one was read to its end, so the connection is clean."""
    wire = ALL_WIRES["openai"]
    sizes = iter([200_000, 10, 0])

    async def status(request, rec):
        size = next(sizes)
        if not size:
            return await answering(wire, ["ok"])(request, rec)
        return web.Response(status=503, text="x" * size)

    server = serve_wire(make_server, wire, status)
    for _ in range(2):
        with pytest.raises(errors.HTTPStatusError):
            await ask(wire, server, max_retries=0)  # each failure on its own
    assert await ask(wire, server) == "ok"
    first, second, third = peers(server)
    assert first != second == third


# -- idle connections close ----------------------------------------------------------


async def test_idle_connections_close_after_the_keep_alive_time(make_server, monkeypatch):
    monkeypatch.setattr(pool, "KEEPALIVE", 0.3)  # this test's loop makes its pool now
    wire = ALL_WIRES["cromicle"]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    assert await ask(wire, server) == "ok"
    assert client_sockets(port_of(server)) == 1
    assert await until(lambda: client_sockets(port_of(server)) == 0, 5)


def test_asyncio_run_closes_its_pool(make_server):
    wire = ALL_WIRES["openai"]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(ask(wire, server)) == "ok"
        gc.collect()
    assert client_sockets(port_of(server)) == 0
    assert not any(loop.is_closed() for loop in pool._pools)
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_loop_made_by_hand_closes_its_pool_with_close_current(make_server):
    wire = ALL_WIRES["cromicle"]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))

    async def ask_and_close():
        answer = await ask(wire, server)
        await pool.close_current()
        return answer

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(ask_and_close()) == "ok"
    finally:
        loop.close()
    assert client_sockets(port_of(server)) == 0


def test_a_loop_closed_without_shutting_down_drops_its_pool(make_server):
    """Nothing can run on a closed loop: its pool is dropped on the next call, and
    its socket closed by the garbage collector (asyncio warns of that transport)."""
    wire = ALL_WIRES["cromicle"]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(ask(wire, server)) == "ok"
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(ask(wire, server)) == "ok"
        del loop
        gc.collect()
    # Only pools of loops still open remain (ipychat's loop thread may hold one
    # from an earlier test): the closed loop's is gone, and so is its socket.
    assert not [other for other in pool._pools if other.is_closed()]
    assert client_sockets(port_of(server)) == 0
    assert not [w for w in caught if "Unclosed connector" in str(w.message)]


async def test_unload_while_an_answer_streams_lets_it_finish(make_server):
    wire, made = ALL_WIRES["cromicle"], {}

    async def held(request, rec):
        release = made.setdefault("release", asyncio.Event())  # on the server's loop
        return await stream_pieces(request, [b"first "], hold=release)

    server = serve_wire(make_server, wire, held)
    answer = asyncio.create_task(ask(wire, server))
    assert await asyncio.to_thread(server.wait_for, lambda: "release" in made, WAIT)
    pool.close_all()  # as %unload_ext does
    await asyncio.sleep(0.05)
    assert not answer.done() and client_sockets(port_of(server)) == 1
    server.call_soon(made["release"].set)
    assert await asyncio.wait_for(answer, WAIT) == "first "
    assert await until(lambda: client_sockets(port_of(server)) == 0, WAIT)


def test_exit_leaves_no_unclosed_connector(make_server):
    wire = ALL_WIRES["openai"]
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    script = ("from ipychat.providers import OpenAIChat\n"
              f"print(''.join(OpenAIChat.create_completion(None, {MESSAGES!r}, "
              f"base_url={server.url!r})))\n")
    done = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert "Unclosed" not in done.stderr and "Task was destroyed" not in done.stderr, done.stderr


@pytest.mark.parametrize("cls", [Cromicle, OpenAssistant])
async def test_the_pool_belongs_to_the_running_loop(make_server, cls):
    wire = next(w for w in ALL_WIRES.values() if w.cls is cls)
    server = serve_wire(make_server, wire, answering(wire, ["ok"]))
    assert await ask(wire, server, cookies=OA_COOKIES) == "ok"
    here = pool.current_pool()
    assert here is not None and here.loop is asyncio.get_running_loop() and here.users == 0
