"""Reading and checking request bodies, the way a strict real API would."""

from __future__ import annotations

import functools
import json
from typing import List, Optional, Sequence

from aiohttp import web

from .reply import content_text
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
