"""Anthropic Messages (``POST /v1/messages``): typed SSE events when streamed,
one message object otherwise. Reasoning is a ``thinking`` content block
(index 0, closed by a ``signature_delta``) before the ``text`` block; tool
calls are ``tool_use`` blocks after them, their input in ``input_json_delta``
pieces."""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import List, Optional

from aiohttp import web

from .inbound import (BadRequest, anthropic_state, flag_field, json_object, message_list,
                      rejecting)
from .plan import Asked, argument_pieces
from .reply import content_text, question_text
from .wire import Framing, Turn, answer, dumps, sse

ROLES = ("user", "assistant")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
#: The smallest thinking budget the API accepts.
MIN_BUDGET = 1024
_ids = itertools.count(1)


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def known_model(model: str) -> bool:
    # Anthropic adds models often: accept any Claude name rather than a list that ages.
    return model.startswith("claude") or model == "emulator"


def signature(thinking: str) -> str:
    """A stand-in for the opaque signature of a thinking block: deterministic,
    base64 like the real one (the SHA-256 of the thinking text)."""
    return base64.b64encode(hashlib.sha256(thinking.encode("utf-8")).digest()).decode()


def event(kind: str, **fields) -> bytes:
    return sse({"type": kind, **fields}, kind)


class AnthropicFraming(Framing):
    stop_word, length_word, tool_word = "end_turn", "max_tokens", "tool_use"
    has_whole = True

    def __init__(self, model: str, messages=()):
        self.model = model
        self.id = f"msg_emulator_{next(_ids):06d}"

    def message(self, content: list, stop_reason: Optional[str], output_tokens: int) -> dict:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": self.plan.input_tokens,
                          "output_tokens": output_tokens}}

    @property
    def text_index(self) -> int:
        return 1 if self.plan.reasoning else 0

    @property
    def has_text_block(self) -> bool:
        """A limit that ends the answer inside the thinking leaves no text block,
        and a turn that only calls tools has none."""
        return bool(self.plan.pieces) or not (self.plan.reasoning or self.plan.calls)

    def tool_blocks(self) -> List[bytes]:
        """Each call: a ``tool_use`` block, its input piece by piece, its stop."""
        frames = []
        first = self.text_index + (1 if self.has_text_block else 0)
        for index, call in enumerate(self.plan.calls, first):
            frames.append(event("content_block_start", index=index, content_block={
                "type": "tool_use", "id": call.id, "name": call.name, "input": {}}))
            frames += [event("content_block_delta", index=index,
                             delta={"type": "input_json_delta", "partial_json": piece})
                       for piece in argument_pieces(call)]
            frames.append(event("content_block_stop", index=index))
        return frames

    def head(self) -> List[bytes]:
        first = ({"type": "thinking", "thinking": ""} if self.plan.reasoning
                 else {"type": "text", "text": ""} if self.has_text_block else None)
        start = [] if first is None else [event("content_block_start", index=0,
                                                content_block=first)]
        return [event("message_start", message=self.message([], None, 1)), *start,
                event("ping")]

    def reasoning(self, piece: str) -> bytes:
        return event("content_block_delta", index=0,
                     delta={"type": "thinking_delta", "thinking": piece})

    def between(self) -> List[bytes]:
        frames = [event("content_block_delta", index=0,
                        delta={"type": "signature_delta",
                               "signature": signature(self.plan.thinking)}),
                  event("content_block_stop", index=0)]
        if self.has_text_block:
            frames.append(event("content_block_start", index=1,
                                content_block={"type": "text", "text": ""}))
        return frames

    def text(self, piece: str) -> bytes:
        return event("content_block_delta", index=self.text_index,
                     delta={"type": "text_delta", "text": piece})

    def tail(self) -> List[bytes]:
        stop = [event("content_block_stop", index=self.text_index)] \
            if self.has_text_block else []
        return stop + self.tool_blocks() + [event("message_delta",
                             delta={"stop_reason": self.plan.finish, "stop_sequence": None},
                             usage={"output_tokens": self.plan.output_tokens})]

    def end(self) -> List[bytes]:
        return [event("message_stop")]

    def error(self, message: str) -> bytes:
        return sse({"type": "error", "error": {"type": "api_error", "message": message}},
                   "error")

    def malformed(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n'

    def unknown(self) -> bytes:
        return sse({"type": "emulator_unknown"}, "emulator_unknown")

    def whole(self) -> bytes:
        plan = self.plan
        content = []
        if plan.reasoning:
            content.append({"type": "thinking", "thinking": plan.thinking,
                            "signature": signature(plan.thinking)})
        if self.has_text_block:
            content.append({"type": "text", "text": plan.text})
        content += [{"type": "tool_use", "id": c.id, "name": c.name,
                     "input": c.as_object() if isinstance(c.as_object(), dict) else {}}
                    for c in plan.calls]
        return dumps(self.message(content, plan.finish, plan.output_tokens))

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


def thinking_asks(thinking, max_tokens: int) -> Optional[bool]:
    """``thinking`` checked as the API does: enabled (with a budget of at least
    1024 tokens, below ``max_tokens``), adaptive, or disabled."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return False
    if kind == "adaptive":
        return True
    if kind != "enabled":
        raise BadRequest("thinking: must be an object with type enabled, adaptive or disabled")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise BadRequest(f"thinking.enabled.budget_tokens: Input should be greater than or "
                         f"equal to {MIN_BUDGET}")
    if max_tokens <= budget:
        raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
    return True


def check_headers(request: web.Request) -> None:
    if not request.headers.get("x-api-key", "").strip():
        raise BadRequest("invalid x-api-key", status=401)
    if not request.headers.get("anthropic-version"):
        raise BadRequest("anthropic-version: header is required")


def checked_messages(raw) -> list:
    raw = raw if isinstance(raw, list) else []
    for i, message in enumerate(raw):
        if isinstance(message, dict) and message.get("role") == "system":
            raise BadRequest(
                f'messages.{i}.role: Unexpected role "system". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.')
        if isinstance(message, dict) and message.get("content") in ("", []) \
                and i < len(raw) - 1:
            raise BadRequest(f"messages.{i}: all messages must have non-empty content except "
                             "for the optional final assistant message")
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
    tools = anthropic_state(data)
    stream = flag_field(data, "stream", False)
    if not known_model(model):
        raise BadRequest(f"model: {model}", status=404)
    everything = ([{"role": "system", "content": system}] if system else []) + messages
    asked = Asked(reasoning=thinking_asks(data.get("thinking"), max_tokens), limit=max_tokens)
    turn = Turn("anthropic", everything, model, AnthropicFraming(model, everything), stream,
                directive_source=question_text(messages), asked=asked, tools=tools)
    return await answer(request, turn)


#: What ``GET /v1/models`` lists to a client that sends ``anthropic-version``.
MODELS = ("claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4-5", "emulator")


@rejecting(AnthropicFraming)
async def list_models(request: web.Request) -> web.Response:
    """Anthropic's model list; OpenAI's has the same path (``openai_api`` hands it on)."""
    check_headers(request)
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in MODELS]
    body = {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
    return web.Response(body=dumps(body), content_type="application/json")


ROUTES = [("POST", "/v1/messages", messages_endpoint)]
