"""Anthropic's Messages API: ``POST {base}/v1/messages`` with typed SSE events.

The text arrives in ``content_block_delta`` events whose delta is a
``text_delta``; ``message_stop`` ends the answer; an ``error`` event reports
a failure mid-stream. Other event types (``ping``, new ones) are ignored, as
Anthropic's versioning policy asks clients to do.
"""

from __future__ import annotations

from .. import errors
from ..streams import sse_events
from .base import HTTPProvider
from .http import Call, check_status, open_session, parse_json, request_options

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
KEY_ENV = "ANTHROPIC_API_KEY"


def headers(call: Call) -> dict:
    return {"x-api-key": call.api_key, "anthropic-version": API_VERSION,
            "content-type": "application/json"}


def request_body(call: Call) -> dict:
    # The Messages API takes system text apart from the user/assistant turns.
    turns = [m for m in call.messages if m["role"] in ("user", "assistant")]
    if not turns:
        raise errors.UsageError("Anthropic needs at least one user message",
                                provider=call.provider)
    system = "\n\n".join(m["content"] for m in call.messages if m["role"] == "system")
    body = {"model": call.model, "max_tokens": DEFAULT_MAX_TOKENS, "messages": turns}
    if system:
        body["system"] = system
    return {**body, "stream": True, **call.options}


def event_object(data: str, call: Call) -> dict:
    value = parse_json(data, call)
    if not isinstance(value, dict):
        raise errors.MalformedStreamError("an event is not a JSON object", data,
                                          provider=call.provider)
    return value


def event_kind(event, call: Call) -> str:
    # The SSE event name is the type; a server that omits it still sends "type".
    if event.event != "message":
        return event.event
    return str(event_object(event.data, call).get("type", ""))


def inner(data: str, key: str, call: Call) -> dict:
    value = event_object(data, call).get(key)
    return value if isinstance(value, dict) else {}


def event_text(kind: str, data: str, call: Call) -> str:
    """The text an event carries ('' for all but text deltas); ``error`` raises."""
    if kind == "content_block_delta":
        delta = inner(data, "delta", call)
        return str(delta.get("text") or "") if delta.get("type") == "text_delta" else ""
    if kind == "error":
        error = inner(data, "error", call)
        what = error.get("type") or "error"
        raise errors.ProviderError(f"{what}: {error.get('message') or 'no details'}",
                                   provider=call.provider)
    return ""


class Anthropic(HTTPProvider):
    url = "https://api.anthropic.com"
    default_base_url = url
    working = True
    needs_auth = True
    supports_stream = True
    supports_message_history = True
    model = "claude-sonnet-4-5"
    api_key_env = KEY_ENV

    @classmethod
    async def generate(cls, call: Call):
        if not call.api_key:
            raise errors.AuthenticationRequired("no API key", provider=call.provider,
                                                hint=cls.key_hint(call.base_url))
        body = request_body(call)
        async with open_session(call, headers(call)) as session:
            async with session.post(call.url("/v1/messages"), json=body,
                                    **request_options(call)) as response:
                await check_status(response, call, cls.key_hint(call.base_url))
                async for event in sse_events(response.content.iter_any()):
                    kind = event_kind(event, call)
                    if kind == "message_stop":
                        return
                    text = event_text(kind, event.data, call)
                    if text:
                        yield text
        raise errors.StreamCutShort("the stream ended before message_stop",
                                    provider=call.provider)
