"""Reading and checking request bodies, the way a strict real API would."""

from __future__ import annotations

import functools
import json
from typing import Dict, List, Optional, Sequence, Tuple

from aiohttp import web

from .reply import content_text
from .tooluse import Offered, Result, ToolState
from .wire import error_response


class BadRequest(Exception):
    """Rejects a request with ``status`` and a message in the protocol's error shape."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def rejecting(framing):
    """Turn a handler's ``BadRequest`` into ``framing``'s error response."""

    def wrap(handler):
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadRequest as err:
                return error_response(framing, err.status, err.message)

        return wrapped

    return wrap


async def json_object(request: web.Request) -> dict:
    body = await request.read()
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def message_list(raw, roles: Sequence[str], field: str = "messages") -> List[dict]:
    """``raw`` checked as a non-empty list of messages; contents become text."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest(f"'{field}' must be a non-empty list of messages")
    messages = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise BadRequest(f"{field}[{i}] must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in roles:
            raise BadRequest(f"{field}[{i}].role: unexpected role {role!r}; "
                             f"expected one of {', '.join(roles)}")
        if content is not None and not isinstance(content, (str, list)):
            raise BadRequest(f"{field}[{i}].content must be a string or a list of parts")
        messages.append({"role": role, "content": content_text(content)})
    return messages


def text_field(data: dict, key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"'{key}' must be a non-empty string")
    return value


def flag_field(data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be true or false")
    return value


def limit_field(data: dict, key: str, where: str = "") -> Optional[int]:
    """A token limit: None when absent, else a whole number of at least 1."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{where}{key}' must be a whole number of at least 1")
    return value


# -- tools: what a request offers, the calls and results it carries -------------

def offered_functions(tools) -> Tuple[Offered, ...]:
    """OpenAI's and Ollama's ``tools``: ``{"type": "function", "function": {...}}``."""
    found = []
    for i, tool in enumerate(_tool_list(tools)):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        found.append(_offered(function, "parameters", f"tools[{i}].function"))
    return tuple(found)


def offered_anthropic(tools) -> Tuple[Offered, ...]:
    return tuple(_offered(tool, "input_schema", f"tools.{i}") if isinstance(tool, dict)
                 else _bad(f"tools.{i}: must be an object")
                 for i, tool in enumerate(_tool_list(tools)))


def _tool_list(tools) -> list:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("tools must be a list")
    return tools


def _offered(spec: dict, schema_key: str, where: str) -> Offered:
    name, schema = spec.get("name"), spec.get(schema_key, {})
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name: Field required")
    if not isinstance(schema, dict):
        raise BadRequest(f"{where}.{schema_key} must be a JSON schema object")
    return Offered(name, schema)


def _bad(message: str):
    raise BadRequest(message)


def openai_state(data: dict) -> ToolState:
    """Calls and results in OpenAI's form, each result answering a call of the
    assistant message before it, every call answered (as the API demands)."""
    pending: Dict[str, str] = {}
    rounds, results = 0, []
    for i, message in enumerate(data.get("messages") or []):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise BadRequest(f"messages[{i}]: a message with role 'tool' must be a "
                                 "response to a preceding message with 'tool_calls'")
            results.append(Result(pending.pop(call_id), content_text(message.get("content"))))
            continue
        _all_answered(pending)
        if role == "user":
            rounds, results = 0, []
        if role == "assistant" and message.get("tool_calls"):
            pending = {c.get("id"): (c.get("function") or {}).get("name", "")
                       for c in message["tool_calls"] if isinstance(c, dict)}
            rounds += 1
    _all_answered(pending)
    return ToolState(offered_functions(data.get("tools")), rounds, tuple(results),
                     len(data.get("messages") or []))


def _all_answered(pending: Dict[str, str]) -> None:
    if pending:
        raise BadRequest("An assistant message with 'tool_calls' must be followed by tool "
                         "messages responding to each 'tool_call_id'. The following "
                         f"tool_call_ids did not have response messages: {', '.join(pending)}")


def anthropic_state(data: dict) -> ToolState:
    """``tool_use`` blocks, each answered by a ``tool_result`` block in the very
    next user message, and no result for a call that was not made."""
    pending: Dict[str, str] = {}
    rounds, results = 0, []
    for i, message in enumerate(data.get("messages") or []):
        blocks = _blocks(message)
        answered = [b for b in blocks if b.get("type") == "tool_result"]
        for block in answered:
            if block.get("tool_use_id") not in pending:
                raise BadRequest(f"messages.{i}.content: unexpected `tool_use_id` found in "
                                 "`tool_result` blocks: " + str(block.get("tool_use_id")))
            results.append(Result(pending.pop(block["tool_use_id"]),
                                  content_text(block.get("content")), bool(block.get("is_error"))))
        if pending:
            raise BadRequest(f"messages.{i}: `tool_use` ids were found without `tool_result` "
                             f"blocks immediately after: {', '.join(pending)}")
        if message.get("role") == "user" and content_text(message.get("content")).strip():
            rounds, results = 0, []
        calls = [b for b in blocks if b.get("type") == "tool_use"]
        if calls:
            pending = {b.get("id"): b.get("name", "") for b in calls}
            rounds += 1
    return ToolState(offered_anthropic(data.get("tools")), rounds, tuple(results),
                     len(data.get("messages") or []))


def _blocks(message) -> List[dict]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def ollama_state(data: dict) -> ToolState:
    """Ollama checks nothing: a ``tool`` message is a result of the calls before it."""
    names: List[str] = []
    rounds, results = 0, []
    for message in data.get("messages") or []:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            rounds, results = 0, []
        elif role == "assistant" and message.get("tool_calls"):
            names = [(c.get("function") or {}).get("name", "") for c in message["tool_calls"]
                     if isinstance(c, dict)]
            rounds += 1
        elif role == "tool":
            name = message.get("tool_name") or (names.pop(0) if names else "")
            results.append(Result(name, content_text(message.get("content"))))
    return ToolState(offered_functions(data.get("tools")), rounds, tuple(results),
                     len(data.get("messages") or []))
