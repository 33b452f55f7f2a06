"""Ollama's native chat API: ``POST {base}/api/chat``, newline-delimited JSON.

Each line is ``{"message": {"content": ...}, "done": false}``; the last one
has ``"done": true``; a line with ``"error"`` reports a failure mid-stream.
"""

from __future__ import annotations

import aiohttp

from .. import errors
from ..streams import ndjson
from .base import HTTPProvider
from .http import Call, check_status, open_session, request_options, translate

#: Request fields Ollama reads at the top level, not inside "options".
TOP_LEVEL = ("format", "keep_alive", "think", "tools")


def request_body(call: Call) -> dict:
    body = {"model": call.model, "messages": call.messages, "stream": True}
    options = {k: v for k, v in call.options.items() if k not in TOP_LEVEL}
    top = {k: v for k, v in call.options.items() if k in TOP_LEVEL}
    return {**body, "options": options, **top}


def line_text(line, call: Call) -> str:
    """The text of one NDJSON line; an error line raises."""
    if not isinstance(line, dict):
        raise errors.MalformedStreamError("a line is not a JSON object", str(line)[:80],
                                          provider=call.provider)
    if "error" in line:
        message = errors.one_line(line["error"] or "the server reported an error")
        raise errors.ProviderError(message, provider=call.provider)
    message = line.get("message")
    return (message.get("content") or "") if isinstance(message, dict) else ""


def not_running(err: aiohttp.ClientConnectorError, call: Call) -> errors.ChatError:
    failure = translate(err, call, started=False)
    if not isinstance(err, aiohttp.ClientProxyConnectionError):
        failure.hint = (f"Ollama does not seem to run at {call.base_url}; "
                        "start it with `ollama serve`.")
    return failure


class Ollama(HTTPProvider):
    url = "http://localhost:11434"
    default_base_url = url
    working = True
    supports_stream = True
    supports_message_history = True
    model = "llama3.2"

    @classmethod
    async def generate(cls, call: Call):
        async with open_session(call) as session:
            try:
                response = await session.post(call.url("/api/chat"), json=request_body(call),
                                              **request_options(call))
            except aiohttp.ClientConnectorError as err:
                raise not_running(err, call) from err
            async with response:
                await check_status(response, call)
                async for line in ndjson(response.content.iter_any()):
                    text = line_text(line, call)
                    if text:
                        yield text
                    if line.get("done"):
                        return
        raise errors.StreamCutShort("the stream ended before its done line",
                                    provider=call.provider)
