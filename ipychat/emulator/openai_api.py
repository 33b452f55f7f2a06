"""OpenAI Chat Completions (``/v1/chat/completions``, ``/v1/models``); Lockchat
speaks the same protocol and is told apart by its ``ChatX/`` User-Agent.

Only the ``openai`` protocol honours ``reasoning_effort`` and ``stream_options``
(and sends reasoning or a usage chunk); Lockchat, like Vitalentum, gets the
token limit and the finish reason only."""

from __future__ import annotations

import itertools
from typing import List, Optional

from aiohttp import web

from . import anthropic
from .inbound import (BadRequest, flag_field, json_object, limit_field, message_list,
                      openai_state, rejecting, text_field)
from .plan import Asked, argument_pieces
from .reply import question_text
from .tooluse import ToolState
from .wire import Framing, Turn, answer, dumps, sse

MODELS = ("gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini", "emulator")
ROLES = ("system", "developer", "user", "assistant", "tool")
#: A fixed timestamp keeps every answer byte-for-byte reproducible.
CREATED = 1700000000
#: ``reasoning_effort`` values that ask for no reasoning.
EFFORT_OFF = ("none", "minimal")
#: Where each reasoning form goes in a chunk's ``delta`` (tags go in the content).
REASONING_KEYS = {"reasoning_content": "reasoning_content", "reasoning": "reasoning",
                  "tags": "content"}
_ids = itertools.count(1)


def is_lockchat(request: web.Request) -> bool:
    return request.headers.get("User-Agent", "").startswith("ChatX/")


def error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


class OpenAIFraming(Framing):
    """Chat-completion chunks over SSE, ending with ``data: [DONE]``."""

    has_whole = True

    def __init__(self, model: Optional[str] = None, messages=()):
        self.model = model
        self.id = f"chatcmpl-emulator-{next(_ids)}"

    def envelope(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": CREATED, "model": self.model,
                "system_fingerprint": "fp_emulator"}

    def chunk(self, delta: dict, finish: Optional[str] = None) -> dict:
        chunk = {**self.envelope("chat.completion.chunk"),
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish}]}
        if self.plan.usage:  # as OpenAI does: null in every chunk but the usage one
            chunk["usage"] = None
        return chunk

    def head(self) -> List[bytes]:
        # A turn that only calls tools has no content, as OpenAI says it: null.
        content = None if self.plan.calls and not self.plan.pieces else ""
        return [sse(self.chunk({"role": "assistant", "content": content}))]

    def reasoning(self, piece: str) -> bytes:
        return sse(self.chunk({REASONING_KEYS[self.plan.form]: piece}))

    def text(self, piece: str) -> bytes:
        return sse(self.chunk({"content": piece}))

    def calls(self) -> List[bytes]:
        """Each call: its id and name first, then its arguments piece by piece."""
        frames = []
        for index, call in enumerate(self.plan.calls):
            first = {"index": index, "id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": ""}}
            frames.append(sse(self.chunk({"tool_calls": [first]})))
            frames += [sse(self.chunk({"tool_calls": [
                {"index": index, "function": {"arguments": piece}}]}))
                for piece in argument_pieces(call) if piece]
        return frames

    def tail(self) -> List[bytes]:
        frames = self.calls() + [sse(self.chunk({}, self.plan.finish))]
        if self.plan.usage:
            frames.append(sse({**self.envelope("chat.completion.chunk"), "choices": [],
                               "usage": self.usage()}))
        return frames

    def end(self) -> List[bytes]:
        return [b"data: [DONE]\n\n"]

    def usage(self) -> dict:
        plan = self.plan
        usage = {"prompt_tokens": plan.input_tokens, "completion_tokens": plan.output_tokens,
                 "total_tokens": plan.input_tokens + plan.output_tokens}
        if plan.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(plan.reasoning)}
        return usage

    def error(self, message: str) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "param": None,
                              "code": None}})

    def unknown(self) -> bytes:
        return sse({"id": self.id, "object": "emulator.unknown", "created": CREATED,
                    "choices": []})

    def quirk(self, model: Optional[str]) -> bytes:
        # Lockchat's server said this (wrongly) now and then; clients retry once.
        message = f"The model: `{model or 'gpt-4'}` does not exist"
        return sse({"error": {"message": message, "type": "invalid_request_error",
                              "param": None, "code": "model_not_found"}})

    def whole(self) -> bytes:
        plan = self.plan
        message = {"role": "assistant", "content": plan.text, "refusal": None}
        if plan.calls:
            message["content"] = plan.text or None
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": c.arguments}} for c in plan.calls]
        if plan.reasoning and plan.form == "tags":
            message["content"] = plan.thinking + plan.text
        elif plan.reasoning:
            message[REASONING_KEYS[plan.form]] = plan.thinking
        return dumps({
            **self.envelope("chat.completion"),
            "choices": [{"index": 0, "logprobs": None, "finish_reason": plan.finish,
                         "message": message}],
            "usage": self.usage(),
        })

    @classmethod
    def error_body(cls, status: int, message: str):
        return dumps({"error": {"message": message, "type": error_type(status), "param": None,
                                "code": None}}), "application/json"


def model_missing(model: str) -> web.Response:
    body = {"error": {"message": f"The model `{model}` does not exist",
                      "type": "invalid_request_error", "param": None,
                      "code": "model_not_found"}}
    return web.Response(status=404, body=dumps(body), content_type="application/json")


@rejecting(OpenAIFraming)
async def chat_completions(request: web.Request) -> web.StreamResponse:
    data = await json_object(request)
    try:
        model = text_field(data, "model")
    except BadRequest:
        raise BadRequest("you must provide a model parameter") from None
    messages = message_list(data.get("messages"), ROLES)
    stream = flag_field(data, "stream", False)
    if model not in MODELS:
        return model_missing(model)
    protocol = "lockchat" if is_lockchat(request) else "openai"
    tools = openai_state(data) if protocol == "openai" else ToolState()
    turn = Turn(protocol, messages, model, OpenAIFraming(model, messages), stream,
                directive_source=question_text(messages), asked=asked(data, protocol),
                tools=tools)
    return await answer(request, turn)


def asked(data: dict, protocol: str) -> Asked:
    """What the body asks for besides the answer (``max_completion_tokens``, the
    newer name, wins over ``max_tokens``)."""
    newer, older = limit_field(data, "max_completion_tokens"), limit_field(data, "max_tokens")
    limit = older if newer is None else newer
    if protocol != "openai":
        return Asked(limit=limit)
    options = data.get("stream_options")
    return Asked(reasoning=effort_asks(data.get("reasoning_effort")), limit=limit,
                 include_usage=isinstance(options, dict) and options.get("include_usage") is True,
                 stream_options="stream_options" in data)


def effort_asks(effort) -> Optional[bool]:
    if effort is None:
        return None
    if not isinstance(effort, str):
        raise BadRequest("'reasoning_effort' must be a string")
    return effort.lower() not in EFFORT_OFF


def model_object(model: str) -> dict:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "ipychat-emulator"}


async def list_models(request: web.Request) -> web.Response:
    if request.headers.get("anthropic-version"):  # Anthropic's API lists models here too
        return await anthropic.list_models(request)
    body = {"object": "list", "data": [model_object(m) for m in MODELS]}
    return web.Response(body=dumps(body), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    model = request.match_info["model"]
    if model not in MODELS:
        return model_missing(model)
    return web.Response(body=dumps(model_object(model)), content_type="application/json")


ROUTES = [
    ("POST", "/v1/chat/completions", chat_completions),
    ("GET", "/v1/models", list_models),
    ("GET", "/v1/models/{model}", get_model),
]
