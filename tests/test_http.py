"""Every way a call can fail maps to one ``ChatError`` subclass with a one-line
message that starts with the provider's name and never shows a secret; run
against every built-in provider through a real recording server. Then the
small helpers of ``ipychat.providers.http``."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers.http import Call, client_timeout, error_text, translate
from tests.test_provider_base import MESSAGES, OA_COOKIES, WIRES, silent, streaming, wires

API_KEY = "sk-secret-9876"
COOKIE = OA_COOKIES["__Secure-next-auth.session-token"]


async def outcome(wire, server, on_text=None, **extra):
    """(texts received, the error raised) for one call; ``on_text()`` after each text."""
    texts = []
    with pytest.raises(errors.ChatError) as caught:
        async for text in wire.cls.create_async_generator("some-model", MESSAGES,
                                                          **wire.call(server, **extra)):
            texts.append(text)
            if on_text:
                on_text()
    return texts, caught.value


def assert_one_line_from(err, wire):
    text = str(err)
    assert text.startswith(f"{wire.cls.__name__}: ")
    assert "\n" not in text and "\r" not in text
    assert err.provider == wire.cls.__name__


# -- HTTP status ----------------------------------------------------------------

STATUS_ERRORS = {
    400: errors.HTTPStatusError, 401: errors.AuthenticationRequired,
    403: errors.AuthenticationRequired, 404: errors.HTTPStatusError, 429: errors.RateLimited,
    500: errors.HTTPStatusError, 502: errors.HTTPStatusError, 503: errors.HTTPStatusError,
}
SERVER_TEXT = f"quota gone for {API_KEY} and {COOKIE}\nsee the docs"


def error_answer(status, body_kind):
    if body_kind == "json":
        body = json.dumps({"error": {"message": SERVER_TEXT, "type": "x"}})
        return web.Response(status=status, text=body, content_type="application/json",
                            headers={"Retry-After": "7"})
    return web.Response(status=status, text=SERVER_TEXT, headers={"Retry-After": "7"})


def replying(response_factory):
    async def handler(request, rec):
        return response_factory()

    return handler


@wires
@pytest.mark.parametrize("status", list(STATUS_ERRORS))
@pytest.mark.parametrize("body_kind", ["json", "text"])
async def test_http_error_status_maps_to_its_error(make_server, wire, status, body_kind):
    server = wire.serve(make_server, replying(lambda: error_answer(status, body_kind)))
    # One attempt: this maps each status (retries: tests/test_retries.py).
    texts, err = await outcome(wire, server, api_key=API_KEY, cookies=OA_COOKIES,
                               max_retries=0)
    assert texts == [] and type(err) is STATUS_ERRORS[status]
    assert err.status == status
    assert_one_line_from(err, wire)
    assert f"HTTP {status}: quota gone for *** and ***" in str(err)
    assert API_KEY not in repr(err.args) and COOKIE not in repr(err.args)
    if status == 429:
        assert err.retry_after == "7" and "retry after 7 s" in str(err)


@wires
async def test_a_long_error_body_is_quoted_short(make_server, wire):
    server = wire.serve(make_server, replying(lambda: web.Response(status=500, text="x" * 10000)))
    _, err = await outcome(wire, server)
    assert_one_line_from(err, wire)
    assert len(str(err)) < 400


@wires
async def test_404_about_the_model_is_model_not_found(make_server, wire):
    body = '{"error": {"message": "The model `some-model` does not exist"}}'
    server = wire.serve(make_server, replying(lambda: web.Response(status=404, text=body)))
    _, err = await outcome(wire, server)
    assert isinstance(err, errors.ModelNotFound) and err.model == "some-model"
    assert_one_line_from(err, wire)


@wires
async def test_a_redirect_is_not_followed(make_server, wire):
    def redirect():
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    server = make_server([("POST", wire.stream_path, replying(redirect)), *wire.setup,
                          ("*", "/elsewhere", replying(lambda: web.Response(text="no")))])
    _, err = await outcome(wire, server)
    assert isinstance(err, errors.HTTPStatusError) and err.status == 302
    assert "redirect" in str(err)
    assert_one_line_from(err, wire)
    assert all(r.path != "/elsewhere" for r in server.requests)


@wires
async def test_an_http_error_in_the_answer_step_still_deletes_the_chat(make_server, wire):
    server = wire.serve(make_server, replying(lambda: web.Response(status=500)))
    await outcome(wire, server, max_retries=0)
    deletes = [r for r in server.requests if r.method == "DELETE"]
    assert len(deletes) == (1 if wire.cls.__name__ == "OpenAssistant" else 0)


# -- connection, timeouts, broken streams ----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@wires
async def test_connection_refused_is_connection_failed(wire):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(errors.ConnectionFailed) as caught:
        await wire.cls.create_async("m", MESSAGES, **{**wire.kwargs, "base_url": url})
    assert_one_line_from(caught.value, wire)


@wires
async def test_no_first_byte_within_the_timeout_is_chat_timeout(make_server, wire):
    server = wire.serve(make_server, silent())
    texts, err = await outcome(wire, server, timeout=0.5)
    assert texts == [] and isinstance(err, errors.ChatTimeout)
    assert "no answer within 0.5 s" in str(err)
    assert_one_line_from(err, wire)
    assert server.wait_for(lambda: wire.answer_record(server).disconnected, 10)


@wires
async def test_a_stall_mid_stream_is_chat_timeout(make_server, wire):
    server = wire.serve(make_server, streaming([wire.frame("Hello")], hold=True,
                                               content_type=wire.content_type))
    texts, err = await outcome(wire, server, timeout=0.5)
    assert texts == ["Hello"] and isinstance(err, errors.ChatTimeout)
    assert "stopped sending within 0.5 s" in str(err)
    assert_one_line_from(err, wire)


def dropping(pieces, content_type, received: asyncio.Event):
    """Send ``pieces`` in a chunked body; once the client ``received`` them,
    close the socket without the body's end."""

    async def handler(request, rec):
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
        # Dropping sooner could lose the text: aiohttp raises before buffered data.
        await received.wait()
        request.transport.close()
        await asyncio.Event().wait()  # cancelled when the connection is gone

    return handler


@wires
async def test_a_dropped_connection_is_stream_cut_short(make_server, wire):
    received = asyncio.Event()
    server = wire.serve(make_server, dropping([wire.frame("Hello")], wire.content_type, received))
    texts, err = await outcome(wire, server, on_text=lambda: server.call_soon(received.set))
    assert texts == ["Hello"] and isinstance(err, errors.StreamCutShort)
    assert "closed in the middle of the answer" in str(err)
    assert_one_line_from(err, wire)


@wires
async def test_a_connection_closed_before_any_answer_is_a_chat_error(make_server, wire):
    async def hang_up(request, rec):
        request.transport.close()
        await asyncio.Event().wait()

    server = wire.serve(make_server, hang_up)
    texts, err = await outcome(wire, server)
    assert texts == [] and isinstance(err, errors.StreamCutShort)
    assert "closed before any answer" in str(err)
    assert_one_line_from(err, wire)


@wires
async def test_a_malformed_frame_is_malformed_stream_error(make_server, wire):
    server = wire.serve(make_server, streaming([wire.frame("Hello"), wire.bad_frame, wire.end],
                                               content_type=wire.content_type))
    texts, err = await outcome(wire, server)
    # Raw text may lose "Hello" when it shares a network chunk with the bad bytes.
    assert texts == ["Hello"] or (wire.cls.__name__ == "Cromicle" and texts == [])
    assert isinstance(err, errors.MalformedStreamError)
    assert_one_line_from(err, wire)


@pytest.mark.parametrize("wire", [w for w in WIRES.values() if w.error_frame],
                         ids=[n for n, w in WIRES.items() if w.error_frame])
async def test_an_in_band_error_event_is_provider_error(make_server, wire):
    server = wire.serve(make_server, streaming([wire.frame("Hello"), wire.error_frame, wire.end],
                                               content_type=wire.content_type))
    texts, err = await outcome(wire, server)
    assert texts == ["Hello"] and type(err) is errors.ProviderError
    assert "model overloaded" in str(err)
    assert_one_line_from(err, wire)


@pytest.mark.parametrize("wire", [w for w in WIRES.values() if w.end],
                         ids=[n for n, w in WIRES.items() if w.end])
async def test_a_stream_without_its_done_marker_is_cut_short(make_server, wire):
    server = wire.serve(make_server, streaming([wire.frame("Hello")],
                                               content_type=wire.content_type))
    texts, err = await outcome(wire, server)
    assert texts == ["Hello"] and isinstance(err, errors.StreamCutShort)
    assert "[DONE]" in str(err)


# -- proxy and URLs ----------------------------------------------------------------


@wires
async def test_the_proxy_is_used_and_its_credentials_sent_to_it_only(make_server, wire):
    server = wire.serve_texts(make_server, ["ok"])
    proxy = server.url.replace("http://", "http://user:proxypw@")
    kwargs = {**wire.call(server), "base_url": "http://chat.example", "proxy": proxy}
    assert await wire.cls.create_async("m", MESSAGES, **kwargs) == "ok"
    answer = wire.answer_record(server)
    assert answer.headers["Host"] == "chat.example"
    assert answer.headers["Proxy-Authorization"] == "Basic dXNlcjpwcm94eXB3"  # user:proxypw
    assert b"proxypw" not in b"".join(r.body for r in server.requests)


@pytest.mark.parametrize("kwargs, error", [
    ({"proxy": f"http://user:proxypw@127.0.0.1:{free_port()}"}, errors.ConnectionFailed),
    ({"proxy": "http://user:proxypw@[bad"}, errors.UsageError),
    ({"base_url": "http://user:urlpw@[bad"}, errors.UsageError),
    ({"base_url": "ftp://user:urlpw@example.com"}, errors.UsageError),
    ({"base_url": "nonsense"}, errors.UsageError),
])
async def test_bad_proxies_and_urls_fail_without_showing_passwords(kwargs, error):
    cls = WIRES["cromicle"].cls
    with pytest.raises(error) as caught:
        await cls.create_async("m", MESSAGES, **kwargs)
    shown = printed_chain(caught.value)
    assert shown[0].startswith("Cromicle: ")
    assert "proxypw" not in str(shown) and "urlpw" not in str(shown)


def printed_chain(err) -> list:
    """str() of each exception a plain-Python traceback would print."""
    shown = []
    while err is not None:
        shown.append(str(err))
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return shown


@pytest.mark.parametrize("timeout", [0, -1, "soon", [1]])
async def test_a_bad_timeout_is_a_usage_error_before_any_request(make_server, timeout):
    wire = WIRES["cromicle"]
    server = wire.serve_texts(make_server, ["never"])
    with pytest.raises(errors.UsageError, match="^Cromicle: timeout must be"):
        await wire.cls.create_async("m", MESSAGES, **wire.call(server, timeout=timeout))
    assert server.requests == []


# -- helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("given, seconds", [(None, 60.0), (2, 2.0), ("1.5", 1.5), (0.25, 0.25)])
def test_client_timeout_bounds_connect_and_each_read_not_the_total(given, seconds):
    timeout = client_timeout(given)
    assert (timeout.total, timeout.sock_connect, timeout.sock_read) == (None, seconds, seconds)


def test_client_timeout_passes_a_client_timeout_through():
    given = aiohttp.ClientTimeout(total=3)
    assert client_timeout(given) is given


@pytest.mark.parametrize("body, text", [
    (b'{"error": {"message": "bad key"}}', "bad key"),
    (b'{"error": {"type": "overloaded"}}', "overloaded"),
    (b'{"error": "plain"}', "plain"),
    (b'{"message": "from message"}', "from message"),
    (b'{"detail": [{"loc": 1}]}', '[{"loc": 1}]'),
    (b'{"other": 1}', '{"other": 1}'),
    (b"[1, 2]", "[1, 2]"),
    (b"  Bad Gateway \n", "Bad Gateway"),
    (b"\xff oops", "\ufffd oops"),
])
def test_error_text_finds_the_human_part(body, text):
    assert error_text(body) == text


def make_call(**extra) -> Call:
    return Call(provider="P", model="m", messages=MESSAGES, base_url="http://h/", **extra)


def test_call_url_secrets_and_repr():
    call = make_call(api_key="sk-abcdef", cookies={"session": "cookie-xyz"})
    assert call.url("/chat") == "http://h/chat"
    assert call.secrets == ["sk-abcdef", "cookie-xyz"]
    assert "sk-abcdef" not in repr(call) and "cookie-xyz" not in repr(call)
    assert repr(call) == "Call(provider='P', model='m', base_url='http://h/')"


def test_translate_leaves_unexpected_errors_alone_and_names_the_provider():
    call = make_call()
    bug = ValueError("a bug")
    assert translate(bug, call, started=False) is bug
    err = translate(errors.ChatError("x"), call, started=False)
    assert err.provider == "P"


def test_translate_redacts_secrets_in_other_client_errors():
    call = make_call(api_key="sk-abcdef")
    err = translate(aiohttp.ClientError("echo sk-abcdef\nmore"), call, started=True)
    assert str(err) == "P: echo *** more."
