"""OpenAI Chat Completions (``/v1/chat/completions``, ``/v1/models``); Lockchat
speaks the same protocol and is told apart by its ``ChatX/`` User-Agent."""

from __future__ import annotations

import itertools
from typing import List, Optional

from aiohttp import web

from ..messages import last_user_text
from .inbound import BadRequest, flag_field, json_object, message_list, rejecting, text_field
from .reply import word_count
from .wire import Framing, Turn, answer, dumps, sse

MODELS = ("gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini", "emulator")
ROLES = ("system", "developer", "user", "assistant", "tool")
#: A fixed timestamp keeps every answer byte-for-byte reproducible.
CREATED = 1700000000
_ids = itertools.count(1)


def is_lockchat(request: web.Request) -> bool:
    return request.headers.get("User-Agent", "").startswith("ChatX/")


def error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


class OpenAIFraming(Framing):
    """Chat-completion chunks over SSE, ending with ``data: [DONE]``."""

    def __init__(self, model: Optional[str] = None, messages=()):
        self.model = model
        self.id = f"chatcmpl-emulator-{next(_ids)}"
        self.prompt_tokens = word_count(messages)

    def chunk(self, delta: dict, finish: Optional[str] = None) -> dict:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": CREATED,
            "model": self.model, "system_fingerprint": "fp_emulator",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def head(self) -> List[bytes]:
        return [sse(self.chunk({"role": "assistant", "content": ""}))]

    def text(self, piece: str) -> bytes:
        return sse(self.chunk({"content": piece}))

    def tail(self, pieces) -> List[bytes]:
        return [sse(self.chunk({}, "stop"))]

    def end(self, pieces) -> List[bytes]:
        return [b"data: [DONE]\n\n"]

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

    def whole(self, pieces) -> bytes:
        text = "".join(pieces)
        completion = len(text.split())
        return dumps({
            "id": self.id, "object": "chat.completion", "created": CREATED, "model": self.model,
            "system_fingerprint": "fp_emulator",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text, "refusal": None}}],
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                      "total_tokens": self.prompt_tokens + completion},
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
    turn = Turn(protocol, messages, model, OpenAIFraming(model, messages), stream,
                directive_source=last_user_text(messages))
    return await answer(request, turn)


def model_object(model: str) -> dict:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "ipychat-emulator"}


async def list_models(request: web.Request) -> web.Response:
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
