"""Anthropic's Messages API: ``POST {base}/v1/messages`` with typed SSE events.

The text arrives in ``content_block_delta`` events whose delta is a
``text_delta`` (thinking: ``thinking_delta``); usage comes in
``message_start`` and ``message_delta``, which also says why the answer
stopped; ``message_stop`` ends the answer; an ``error`` event reports a
failure mid-stream. Other event types (``ping``, ``signature_delta``, new
ones) are ignored, as Anthropic's versioning policy asks clients to do.

A tool call is a ``tool_use`` content block whose input arrives as
``input_json_delta`` pieces; it becomes one ``ToolCall`` at its
``content_block_stop``. Results go back as ``tool_result`` blocks (with
``is_error`` when the tool raised) in the next user message.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

from .. import errors
from ..events import Event, Reasoning, Text, ToolCall, finish, usage
from ..messages import text_of
from ..streams import sse_events
from .base import HTTPProvider
from .http import (Call, check_status, client_timeout, get_json, open_session, parse_json,
                   request_options)
from .openai import model_ids
from .openai_chunks import is_json

API_VERSION = "2023-06-01"
#: The API requires a limit. High enough that ordinary answers are never cut.
DEFAULT_MAX_TOKENS = 8192
#: Thinking budgets for --reasoning; the API's minimum is 1024.
BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}
MIN_BUDGET = 1024
KEY_ENV = "ANTHROPIC_API_KEY"


def headers(call: Call) -> dict:
    return {"x-api-key": call.api_key, "anthropic-version": API_VERSION,
            "content-type": "application/json"}


def request_body(call: Call) -> dict:
    # The Messages API takes system text apart from the user/assistant turns.
    turns = wire_turns(call.messages)
    if not turns:
        raise errors.UsageError("Anthropic needs at least one user message",
                                provider=call.provider)
    system = "\n\n".join(text_of(m["content"]) for m in call.messages if m["role"] == "system")
    body = {"model": call.model, "max_tokens": call.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": turns}
    if system:
        body["system"] = system
    if call.reasoning not in (None, "off"):
        body["thinking"] = thinking(call)
        body["max_tokens"] = call.max_tokens or BUDGETS[call.reasoning] + DEFAULT_MAX_TOKENS
    if call.tools:
        body["tools"] = [{"name": t["name"], "description": t.get("description") or "",
                          "input_schema": t["parameters"]} for t in call.tools]
    return {**body, "stream": True, **call.options}


def wire_turns(messages) -> List[dict]:
    """User and assistant turns; tool results, which are user content here,
    join into one user turn after the assistant turn that called them."""
    turns: List[dict] = []
    for message in messages:
        if message["role"] == "assistant" and message["content"] == "" \
                and not message.get("tool_calls"):
            continue  # the API refuses empty turns; a turn that only called tools has none
        if message["role"] == "tool":
            if not (turns and turns[-1].get("results")):
                turns.append({"role": "user", "content": [], "results": True})
            turns[-1]["content"].append(result_block(message))
        elif message["role"] in ("user", "assistant"):
            turns.append(wire_turn(message))
    return [{k: v for k, v in turn.items() if k != "results"} for turn in turns]


def result_block(message: dict) -> dict:
    block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""),
             "content": message["content"]}
    return {**block, "is_error": True} if message.get("is_error") else block


def wire_turn(message: dict) -> dict:
    """A turn with neutral image parts as Anthropic's base64 image blocks, and
    tool calls as ``tool_use`` blocks after the text."""
    content = message["content"]
    if message.get("tool_calls"):
        text = [{"type": "text", "text": content}] if content else []  # no empty blocks
        return {"role": "assistant", "content": text + [
            {"type": "tool_use", "id": c["id"], "name": c["name"], "input": _input(c)}
            for c in message["tool_calls"]]}
    if isinstance(content, str):
        return message
    blocks = [{"type": "text", "text": part["text"]} if part["type"] == "text" else
              {"type": "image", "source": {"type": "base64", "media_type": part["media_type"],
                                           "data": part["data"]}}
              for part in content]
    return {**message, "content": blocks}


def _input(call: dict) -> dict:
    """A call's input object (``{}`` when the model sent no JSON object: it got
    an error result for that)."""
    try:
        value = json.loads(call["arguments"])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def thinking(call: Call) -> dict:
    """The thinking budget, kept below the token limit as the API requires."""
    budget = BUDGETS[call.reasoning]
    if call.max_tokens is not None:
        if call.max_tokens <= MIN_BUDGET:
            raise errors.UsageError(
                f"thinking needs more than {MIN_BUDGET} tokens, but --max-tokens is "
                f"{call.max_tokens}", provider=call.provider,
                hint=f"Raise --max-tokens above {MIN_BUDGET} or use --reasoning off.")
        budget = min(budget, max(MIN_BUDGET, call.max_tokens // 2))
    return {"type": "enabled", "budget_tokens": budget}


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


class ToolBlocks:
    """``tool_use`` blocks being streamed, by content block index."""

    def __init__(self):
        self._open: Dict[int, dict] = {}

    def start(self, index, block: dict) -> None:
        if block.get("type") == "tool_use":
            self._open[index] = {"id": str(block.get("id") or f"toolu_{index}"),
                                 "name": str(block.get("name") or ""),
                                 "given": block.get("input"), "pieces": []}

    def add(self, index, piece) -> None:
        if index in self._open and isinstance(piece, str):
            self._open[index]["pieces"].append(piece)

    def stop(self, index) -> List[Event]:
        entry = self._open.pop(index, None)
        if entry is None:
            return []
        # The input comes in pieces after an empty one; a proxy may give it whole instead.
        given = entry["given"]
        arguments = "".join(entry["pieces"]) or (
            json.dumps(given, ensure_ascii=False) if given else "{}")
        return [ToolCall(entry["id"], entry["name"], arguments)]


def event_events(kind: str, data: str, call: Call, blocks: Optional[ToolBlocks] = None
                 ) -> List[Event]:
    """The events one SSE event carries; ``error`` raises. ``blocks`` keeps
    the tool calls being streamed."""
    blocks = blocks if blocks is not None else ToolBlocks()
    if kind == "content_block_delta":
        delta = inner(data, "delta", call)
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [Text(str(delta["text"]))]
        if delta.get("type") == "thinking_delta" and delta.get("thinking"):
            return [Reasoning(str(delta["thinking"]))]
        if delta.get("type") == "input_json_delta":
            blocks.add(event_object(data, call).get("index"), delta.get("partial_json"))
        return []
    if kind == "content_block_start":
        value = event_object(data, call)
        blocks.start(value.get("index"), inner(data, "content_block", call))
        return []
    if kind == "content_block_stop":
        return blocks.stop(event_object(data, call).get("index"))
    if kind == "message_start":
        return _present(usage_of(inner(data, "message", call).get("usage")))
    if kind == "message_delta":
        reason = inner(data, "delta", call).get("stop_reason")
        return _present(usage_of(event_object(data, call).get("usage")), finish(reason))
    if kind == "error":
        error = inner(data, "error", call)
        what = error.get("type") or "error"
        raise errors.ProviderError(f"{what}: {error.get('message') or 'no details'}",
                                   provider=call.provider)
    return []


def usage_of(data) -> Optional[Event]:
    if not isinstance(data, dict):
        return None
    return usage(data.get("input_tokens"), data.get("output_tokens"))


def _present(*events) -> List[Event]:
    return [event for event in events if event is not None]


def message_events(reply, call: Call) -> List[Event]:
    """The events of a whole (non-streamed) Messages answer."""
    if not isinstance(reply, dict) or not isinstance(reply.get("content"), list):
        raise errors.MalformedStreamError("the answer has no content list", str(reply)[:80],
                                          provider=call.provider)
    found: List[Event] = []
    for block in reply["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and block.get("thinking"):
            found.append(Reasoning(str(block["thinking"])))
        elif block.get("type") == "text" and block.get("text"):
            found.append(Text(str(block["text"])))
        elif block.get("type") == "tool_use":
            found.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                  json.dumps(block.get("input", {}), ensure_ascii=False)))
    return found + _present(usage_of(reply.get("usage")), finish(reply.get("stop_reason")))


class Anthropic(HTTPProvider):
    url = "https://api.anthropic.com"
    default_base_url = HTTPProvider.env_url("ANTHROPIC_BASE_URL", url)
    working = True
    needs_auth = True
    supports_stream = True
    supports_message_history = True
    model = "claude-sonnet-4-5"
    api_key_env = KEY_ENV
    takes_reasoning = True
    takes_images = True
    takes_tools = True

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
                if is_json(response):  # a proxy or mock that answered whole
                    reply = parse_json(await response.read(), call, "the answer is not JSON")
                    for found in message_events(reply, call):
                        yield found
                    return
                blocks = ToolBlocks()
                async for event in sse_events(response.content.iter_any()):
                    kind = event_kind(event, call)
                    if kind == "message_stop":
                        return
                    for found in event_events(kind, event.data, call, blocks):
                        yield found
        raise errors.StreamCutShort("the stream ended before message_stop",
                                    provider=call.provider)

    @classmethod
    async def list_models(cls, base_url: Optional[str] = None, api_key: Optional[str] = None,
                          *, api_key_env: Optional[str] = None, proxy: Optional[str] = None,
                          timeout=None) -> List[str]:
        """The sorted model ids the API offers (``GET {base}/v1/models``, one page
        of up to 1,000)."""
        base = (base_url or cls.default_base_url).rstrip("/")
        call = Call(provider=cls.label(), model=None, messages=[], base_url=base,
                    proxy=proxy or None, timeout=client_timeout(timeout),
                    api_key=cls.resolve_key(api_key, api_key_env, base))
        if not call.api_key:
            raise errors.AuthenticationRequired("no API key", provider=call.provider,
                                                hint=cls.key_hint(base))
        reply = await get_json(call, "/v1/models?limit=1000", headers(call),
                               cls.key_hint(base), "the model list is not JSON")
        return model_ids(reply, call)
