"""OpenAI-compatible Chat Completions: api.openai.com and every local or hosted
server that speaks the same protocol (vLLM, LM Studio, llama.cpp, ...).

``POST {base}/chat/completions`` with ``"stream": true``; the answer is SSE
with OpenAI-style chunks ending in ``data: [DONE]`` (``openai_chunks``).
Tools go as ``tools`` of type ``function``; a turn that called them comes
back as an assistant message with ``tool_calls``, then one ``role: "tool"``
message per result.

Usage is asked for with ``stream_options: {"include_usage": true}``. Some
compatible servers reject that field with HTTP 400: the request then goes
again without it, and the base URL is remembered so it is not sent there
again in this process.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import List, Optional

from .. import errors
from .base import HTTPProvider, same_origin
from .http import Call, check_status, client_timeout, get_json, open_session, request_options
from .openai_chunks import chunk_events

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
USAGE_OPTIONS = {"include_usage": True}
#: Base URLs that answered HTTP 400 to ``stream_options``.
_NO_STREAM_OPTIONS: set = set()


@dataclass(repr=False)  # keeps Call's repr, which never shows the key
class KeyedCall(Call):
    """A call that knows what to say when its key is missing or rejected."""

    hint: str = f"Set {DEFAULT_KEY_ENV} or pass api_key=."

    @property
    def auth_hint(self) -> str:
        return self.hint


def auth_headers(call: Call) -> dict:
    # Local servers need no key: send no Authorization header at all then.
    return {"Authorization": f"Bearer {call.api_key}"} if call.api_key else {}


class OpenAIChat(HTTPProvider):
    url = "https://api.openai.com/v1"
    default_base_url = HTTPProvider.env_url("OPENAI_BASE_URL", url)
    working = True
    needs_auth = True
    supports_stream = True
    supports_message_history = True
    supports_gpt_35_turbo = True
    supports_gpt_4 = True
    model = "gpt-4o-mini"
    api_key_env = DEFAULT_KEY_ENV
    takes_reasoning = True
    takes_images = True
    takes_tools = True

    @classmethod
    def make_call(cls, model, messages, *, api_key_env=None, **kwargs) -> KeyedCall:
        call = super().make_call(model, messages, api_key_env=api_key_env, **kwargs)
        return KeyedCall(**vars(call), hint=cls.key_hint(call.base_url) if not api_key_env
                         else f"Set {api_key_env} or pass api_key=.")

    @classmethod
    async def generate(cls, call: KeyedCall):
        body = cls.request_body(call)
        try:
            # aclosing: a consumer that stops early must close this request now.
            async with contextlib.aclosing(cls._post(call, body)) as events:
                async for event in events:
                    yield event
        except errors.HTTPStatusError as err:
            if not rejects_stream_options(err, body):
                raise
            _NO_STREAM_OPTIONS.add(call.base_url)
            body.pop("stream_options")
            async with contextlib.aclosing(cls._post(call, body)) as events:
                async for event in events:
                    yield event

    @classmethod
    async def _post(cls, call: KeyedCall, body: dict):
        async with open_session(call, auth_headers(call)) as session:
            async with session.post(call.url("/chat/completions"), json=body,
                                    **request_options(call)) as response:
                await check_status(response, call, call.auth_hint)
                async for event in chunk_events(response, call):
                    yield event

    @classmethod
    def request_body(cls, call: Call) -> dict:
        body = {"model": call.model, "messages": [wire_message(m) for m in call.messages]}
        if call.max_tokens is not None:
            # OpenAI itself renamed the field (its reasoning models refuse the
            # old one); compatible servers know the old name only. cls.url:
            # OPENAI_BASE_URL may move default_base_url to such a server.
            own = same_origin(call.base_url, cls.url)
            body["max_completion_tokens" if own else "max_tokens"] = call.max_tokens
        if call.reasoning is not None:
            body["reasoning_effort"] = "none" if call.reasoning == "off" else call.reasoning
        if call.tools:
            body["tools"] = [{"type": "function", "function": schema} for schema in call.tools]
        body.update(call.options)
        body["stream"] = True
        if call.base_url not in _NO_STREAM_OPTIONS and "stream_options" not in body:
            body["stream_options"] = dict(USAGE_OPTIONS)
        return body

    @classmethod
    async def list_models(cls, base_url: Optional[str] = None, api_key: Optional[str] = None,
                          *, api_key_env: Optional[str] = None, proxy: Optional[str] = None,
                          timeout=None) -> List[str]:
        """The sorted model ids the server offers (``GET {base}/models``)."""
        base = (base_url or cls.default_base_url).rstrip("/")
        try:
            key = cls.resolve_key(api_key, api_key_env, base)
        except errors.ChatError as err:
            err.provider = cls.label()
            raise
        call = KeyedCall(provider=cls.label(), model=None, messages=[], base_url=base,
                         proxy=proxy or None, timeout=client_timeout(timeout), api_key=key,
                         hint=cls.key_hint(base))
        reply = await get_json(call, "/models", auth_headers(call), call.auth_hint,
                               "the model list is not JSON")
        return model_ids(reply, call)


def wire_message(message: dict) -> dict:
    """A neutral message in OpenAI's form: images as ``image_url`` parts with a
    data URL, tool calls and results as the API has them."""
    if message["role"] == "tool":
        return {"role": "tool", "tool_call_id": message.get("tool_call_id", ""),
                "content": result_content(message)}
    if message.get("tool_calls"):
        return {"role": "assistant", "content": message["content"] or None,
                "tool_calls": [{"id": c["id"], "type": "function",
                                "function": {"name": c["name"], "arguments": c["arguments"]}}
                               for c in message["tool_calls"]]}
    content = message["content"]
    if isinstance(content, str):
        return message
    parts = [{"type": "text", "text": part["text"]} if part["type"] == "text" else
             {"type": "image_url",
              "image_url": {"url": f"data:{part['media_type']};base64,{part['data']}"}}
             for part in content]
    return {**message, "content": parts}


def result_content(message: dict) -> str:
    """A tool result's text; the protocol has no error flag, so an error says so."""
    content = message["content"]
    return f"Error: {content}" if message.get("is_error") else content


def rejects_stream_options(err: errors.HTTPStatusError, body: dict) -> bool:
    """Whether a 400 is the server refusing the ``stream_options`` we added."""
    return (err.status == 400 and "stream_options" in str(err)
            and body.get("stream_options") == USAGE_OPTIONS)


def model_ids(reply, call: Call) -> List[str]:
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, list):
        raise errors.MalformedStreamError("the model list has no 'data' list", str(reply)[:80],
                                          provider=call.provider)
    return sorted(str(item["id"]) for item in data if isinstance(item, dict) and "id" in item)
