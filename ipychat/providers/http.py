"""The HTTP side every built-in provider shares: session, timeouts, status and
exception mapping into the ``ipychat.errors`` family, default base URLs from
the environment.

One ``aiohttp.ClientSession`` per call, on connections kept per event loop.
The session is cheap next to a chat answer and holds that call's cookies,
default headers (its key) and timeouts, and nothing else's; it closes with
the call, so no "Unclosed client session" warning. The connections under it
belong to the running loop's pool (``pool.py``): a call read to its end hands
its connection back for the next call to the same server (no new TCP and TLS
handshakes); a call that stops before the end of its response (cancelled,
stopped early, timed out, failed half-way) closes it; idle ones close after
``pool.KEEPALIVE`` seconds, when the loop shuts down, and on
``%unload_ext ipychat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

import aiohttp

from .. import errors
from ..streams import StreamDecodeError
from . import pool

#: Seconds to connect, and seconds to wait for each next piece of the answer.
DEFAULT_TIMEOUT = 60.0
#: How much of an error body we read to quote the server's message.
ERROR_BODY_LIMIT = 64 * 1024


def client_timeout(timeout) -> aiohttp.ClientTimeout:
    """``timeout=`` as users give it: seconds (connect and each read) or a ClientTimeout."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    seconds = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise errors.UsageError(f"timeout must be a number of seconds, not {timeout!r}") from None
    if seconds <= 0:
        raise errors.UsageError("timeout must be more than 0 seconds")
    # No total: a long answer may stream for minutes; what matters is silence.
    # connect also bounds the name lookup, which sock_connect does not cover.
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds,
                                 sock_read=seconds)


@dataclass
class Call:
    """One request's worth of settings, with control arguments kept apart
    from the options that go into the request body."""

    provider: str
    model: Optional[str]
    messages: List[Dict[str, str]]
    base_url: str
    proxy: Optional[str] = None
    timeout: aiohttp.ClientTimeout = field(default_factory=lambda: client_timeout(None))
    cookies: Optional[Dict[str, str]] = None
    api_key: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)
    #: ``max_tokens=`` and ``reasoning=``: each protocol has its own field for them.
    max_tokens: Optional[int] = None
    reasoning: Optional[str] = None
    #: How often a request that failed before its answer started is sent again.
    max_retries: int = 2
    #: Set once a streaming answer's headers came back fine: from then on a
    #: failure is no longer "before the answer" (see ``retry.retryable``).
    stream_opened: bool = False
    #: Tools offered, in the neutral form (``name``, ``description``, ``parameters``).
    tools: Optional[List[dict]] = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def secrets(self) -> list:
        found = [self.api_key] if self.api_key else []
        found += list((self.cookies or {}).values())
        return found

    def __repr__(self) -> str:  # never show keys or cookies
        return f"Call(provider={self.provider!r}, model={self.model!r}, base_url={self.base_url!r})"


def open_session(call: Call, headers: Optional[dict] = None) -> "CallSession":
    """``async with open_session(call, headers) as session``: this call's own
    ``ClientSession`` on the running loop's kept-alive connections."""
    return CallSession(call, headers)


class CallSession:
    """The session of one call; its connections come from the loop's pool."""

    def __init__(self, call: Call, headers: Optional[dict]):
        self.call, self.headers = call, headers
        self.pool: Optional[pool.Pool] = None
        self.session: Optional[aiohttp.ClientSession] = None

    async def __aenter__(self) -> aiohttp.ClientSession:
        loop_pool = pool.pool_for_running_loop()
        connector = loop_pool.lease()
        try:
            self.session = self._make(connector)
        except BaseException:
            await loop_pool.give_back()
            raise
        self.pool = loop_pool
        return self.session

    def _make(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            connector_owner=False,  # the pool outlives the call
            response_class=pool.PooledResponse,
            headers=self.headers,
            cookies=self.call.cookies,
            timeout=self.call.timeout,
            # No cookie sharing across hosts and no redirects: requests go only
            # to the base URL the user chose.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    async def __aexit__(self, *exc) -> None:
        try:
            await self.session.close()
            await pool.settle()
        finally:
            await self.pool.give_back()


class EnvURL:
    """A provider's default base URL: environment variable ``var`` when set,
    else ``builtin``. Read at each use, so a kernel sees what it started with
    and a test what it patched in."""

    def __init__(self, var: str, builtin: str, default_port: Optional[int] = None):
        self.var, self.builtin, self.default_port = var, builtin, default_port

    def __get__(self, obj, owner=None) -> str:
        value = os.environ.get(self.var, "").strip()
        return base_url_from_env(value, self.default_port) if value else self.builtin

    def __repr__(self) -> str:
        return f"EnvURL({self.var!r}, {self.builtin!r})"


def base_url_from_env(value: str, default_port: Optional[int] = None) -> str:
    """A base URL as given in an environment variable.

    With a scheme it is used as given (``OPENAI_BASE_URL`` and
    ``ANTHROPIC_BASE_URL``, as their SDKs do). Without one it is read the
    way Ollama reads ``OLLAMA_HOST``: ``host``, ``host:port``, ``:port`` or
    ``host:port/path``, over http, on ``default_port`` when none is given and
    127.0.0.1 when only a port is.
    """
    value = value.strip()
    if "://" in value:
        return value.rstrip("/")
    parts = urlsplit("http://" + value)
    try:
        port = parts.port or default_port
    except ValueError:  # not a port number: the request will say "invalid URL"
        return "http://" + value.rstrip("/")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6 again in brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"http://{netloc}{parts.path.rstrip('/')}"


def request_options(call: Call) -> dict:
    """Keyword arguments for ``session.request`` that every call shares."""
    return {"proxy": call.proxy, "allow_redirects": False}


def error_text(body: bytes) -> str:
    """The short human part of an error body (JSON ``error.message`` etc.)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    for key in ("error", "message", "detail"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, dict):
            value = value.get("message") or value.get("type") or value
        if value:
            return value if isinstance(value, str) else json.dumps(value)
    return text


async def check_status(response: aiohttp.ClientResponse, call: Call,
                       auth_hint: Optional[str] = None) -> None:
    """Raise the matching ``ChatError`` for any status but 2xx.

    ``auth_hint``: what to do on 401/403 (e.g. which variable holds the key).
    """
    if response.status < 300:
        # The answer's stream is open (OpenAssistant's JSON steps come before it).
        call.stream_opened = call.stream_opened or response.content_type != "application/json"
        return
    body = await response.content.read(ERROR_BODY_LIMIT)
    detail = errors.redact(error_text(body), call.secrets)
    failure = status_error(response.status, detail, response.headers, call)
    if auth_hint and isinstance(failure, errors.AuthenticationRequired):
        failure.hint = auth_hint
    # What a retry needs: the server's wait and its own word on retrying.
    failure.headers = {k.lower(): v for k, v in response.headers.items()
                       if k.lower() in ("retry-after", "retry-after-ms", "x-should-retry")}
    should = failure.headers.get("x-should-retry", "").strip().lower()
    failure.should_retry = {"true": True, "false": False}.get(should)
    raise failure


def status_error(status: int, detail: str, headers, call: Call) -> errors.ChatError:
    who = call.provider
    if status in (401, 403):
        return errors.AuthenticationRequired(detail or "not authorised", status=status,
                                             provider=who)
    if status == 429:
        return errors.RateLimited(detail, retry_after=headers.get("Retry-After"), provider=who)
    if status == 404 and call.model and "model" in detail.lower():
        return errors.ModelNotFound(call.model, detail, provider=who)
    if 300 <= status < 400:
        hint = "The server redirected; ipychat does not follow redirects. Check the base URL."
    elif status >= 500:
        hint = "The server failed; try again later."
    elif status == 404:
        hint = "Check the base URL."
    else:
        hint = "The server rejected the request."
    return errors.HTTPStatusError(status, detail, provider=who, hint=hint)


# aiohttp >= 3.10 raises NonHttpUrlClientError (not an InvalidURL) for ftp:// and the like.
_BAD_URL = (aiohttp.InvalidURL, getattr(aiohttp, "NonHttpUrlClientError", aiohttp.InvalidURL))


def translate(err: BaseException, call: Call, started: bool) -> BaseException:
    """Map an exception raised while talking to a server to a ``ChatError``.

    ``started``: whether answer text was already yielded (a dropped connection
    then means the answer was cut short).
    """
    who = call.provider
    if isinstance(err, errors.ChatError):
        if err.provider is None:
            err.provider = who
        return _scrubbed(err, call.secrets)
    if isinstance(err, StreamDecodeError):
        return errors.MalformedStreamError(err.what, err.fragment, provider=who)
    if isinstance(err, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        what = "the server stopped sending" if started else "no answer"
        return errors.ChatTimeout(f"{what} within {call.timeout.sock_read:g} s", provider=who)
    if isinstance(err, _BAD_URL):
        return errors.UsageError(f"invalid URL {errors.hide_credentials(err)}", provider=who)
    if isinstance(err, aiohttp.ClientProxyConnectionError):  # before its base class
        return errors.ConnectionFailed("cannot connect through the proxy", provider=who)
    if isinstance(err, aiohttp.ClientConnectorError):
        where = f"{err.host}:{err.port}"
        return errors.ConnectionFailed(f"cannot connect to {where} ({_reason(err)})", provider=who)
    if isinstance(err, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                        aiohttp.ClientOSError, ConnectionResetError)):
        when = "in the middle of the answer" if started else "before any answer"
        return errors.StreamCutShort(f"the connection closed {when}", provider=who)
    if isinstance(err, aiohttp.ClientError):
        return errors.ChatError(errors.redact(errors.one_line(str(err)), call.secrets),
                                provider=who)
    return err


def _scrubbed(err: errors.ChatError, secrets) -> errors.ChatError:
    # A server may echo the key inside a stream error event, not only in a status body.
    err.message = errors.redact(err.message, secrets)
    err.args = tuple(errors.redact(a, secrets) if isinstance(a, str) else a for a in err.args)
    return err


def _reason(err: aiohttp.ClientConnectorError) -> str:
    reason = err.os_error.strerror or str(err.os_error) if err.os_error else ""
    return errors.one_line(reason, 80) or "refused"


def parse_json(data, call: Call, what: str = "an event is not JSON"):
    """``json.loads`` that raises ``MalformedStreamError`` naming the provider."""
    try:
        return json.loads(data)
    except ValueError:
        raise errors.MalformedStreamError(what, data, provider=call.provider) from None


@contextlib.asynccontextmanager
async def translated(call: Call, progress: dict):
    """Re-raise anything from the block as the ``ChatError`` it means."""
    try:
        yield
    except (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt):
        raise
    except Exception as err:
        mapped = translate(err, call, progress.get("started", False))
        if mapped is err:
            raise
        # A bad URL's own exception would print the password the message hides.
        raise mapped from (None if isinstance(mapped, errors.UsageError) else err)


async def get_json(call: Call, path: str, headers: Optional[dict] = None,
                   auth_hint: Optional[str] = None, what: str = "the reply is not JSON"):
    """``GET {base}{path}`` and its JSON (a server's model list), any failure
    as the ``ChatError`` it means."""
    async with translated(call, {}):
        async with open_session(call, headers) as session:
            async with session.get(call.url(path), **request_options(call)) as response:
                await check_status(response, call, auth_hint)
                return parse_json(await response.read(), call, what)
