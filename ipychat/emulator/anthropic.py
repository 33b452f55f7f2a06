"""Anthropic Messages (``POST /v1/messages``): typed SSE events when streamed,
one message object otherwise."""

from __future__ import annotations

import itertools
from typing import List, Optional

from aiohttp import web

from ..messages import last_user_text
from .inbound import BadRequest, flag_field, json_object, message_list, rejecting
from .reply import content_text, word_count
from .wire import Framing, Turn, answer, dumps, sse

ROLES = ("user", "assistant")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_ids = itertools.count(1)


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def known_model(model: str) -> bool:
    # Anthropic adds models often: accept any Claude name rather than a list that ages.
    return model.startswith("claude") or model == "emulator"


class AnthropicFraming(Framing):
    def __init__(self, model: str, messages=()):
        self.model = model
        self.id = f"msg_emulator_{next(_ids):06d}"
        self.input_tokens = word_count(messages)

    def message(self, content: list, stop_reason: Optional[str], output_tokens: int) -> dict:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": output_tokens}}

    def head(self) -> List[bytes]:
        return [
            sse({"type": "message_start", "message": self.message([], None, 1)},
                "message_start"),
            sse({"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ]

    def text(self, piece: str) -> bytes:
        return sse({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")

    def tail(self, pieces) -> List[bytes]:
        return [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse({"type": "message_delta",
                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": len(pieces)}}, "message_delta"),
        ]

    def end(self, pieces) -> List[bytes]:
        return [sse({"type": "message_stop"}, "message_stop")]

    def error(self, message: str) -> bytes:
        return sse({"type": "error", "error": {"type": "api_error", "message": message}},
                   "error")

    def malformed(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n'

    def unknown(self) -> bytes:
        return sse({"type": "emulator_unknown"}, "emulator_unknown")

    def whole(self, pieces) -> bytes:
        text = "".join(pieces)
        return dumps(self.message([{"type": "text", "text": text}], "end_turn",
                                  len(text.split())))

    @classmethod
    def error_body(cls, status: int, message: str):
        body = {"type": "error", "error": {"type": error_type(status), "message": message}}
        return dumps(body), "application/json"


def system_text(system) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if isinstance(system, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in system):
        return content_text(system)
    raise BadRequest("system: must be a string or a list of text blocks")


def check_headers(request: web.Request) -> None:
    if not request.headers.get("x-api-key", "").strip():
        raise BadRequest("invalid x-api-key", status=401)
    if not request.headers.get("anthropic-version"):
        raise BadRequest("anthropic-version: header is required")


def checked_messages(raw) -> list:
    for i, message in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(message, dict) and message.get("role") == "system":
            raise BadRequest(
                f'messages.{i}.role: Unexpected role "system". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.')
    return message_list(raw, ROLES)


@rejecting(AnthropicFraming)
async def messages_endpoint(request: web.Request) -> web.StreamResponse:
    check_headers(request)
    data = await json_object(request)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    max_tokens = data.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a whole number of at least 1)")
    system = system_text(data.get("system"))
    messages = checked_messages(data.get("messages"))
    stream = flag_field(data, "stream", False)
    if not known_model(model):
        raise BadRequest(f"model: {model}", status=404)
    everything = ([{"role": "system", "content": system}] if system else []) + messages
    turn = Turn("anthropic", everything, model, AnthropicFraming(model, everything), stream,
                directive_source=last_user_text(messages))
    return await answer(request, turn)


ROUTES = [("POST", "/v1/messages", messages_endpoint)]
