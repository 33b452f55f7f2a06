"""Ollama's native API under ``/ollama`` (``/api/chat`` is OpenAssistant's here):
``POST /ollama/api/chat`` answers newline-delimited JSON, ``GET /ollama/api/tags``.
Reasoning (asked by ``think``) goes in ``message.thinking`` lines before the
content lines; ``options.num_predict`` limits the answer. Tool calls come
whole, in one ``message.tool_calls`` line, arguments as objects, no ids."""

from __future__ import annotations

from hashlib import sha256
from typing import List, Optional

from aiohttp import web

from .inbound import (BadRequest, flag_field, json_object, message_list, ollama_state,
                      rejecting)
from .plan import Asked
from .reply import question_text
from .wire import Framing, Turn, answer, dumps

PREFIX = "/ollama"
MODELS = ("emulator:latest", "llama3.2:latest", "llama3.1:8b", "qwen2.5:0.5b",
          "mistral:latest", "gemma3:1b")
ROLES = ("system", "user", "assistant", "tool")
CREATED_AT = "2024-01-01T00:00:00Z"
MODIFIED_AT = "2024-01-01T00:00:00+00:00"
#: ``think`` may be a level instead of true (gpt-oss takes only levels).
THINK_LEVELS = ("low", "medium", "high")


def full_name(model: str) -> str:
    """``llama3.2`` means ``llama3.2:latest`` to Ollama."""
    return model if ":" in model else f"{model}:latest"


def line(value) -> bytes:
    return dumps(value) + b"\n"


class NDJSONFraming(Framing):
    content_type = "application/x-ndjson"
    has_whole = True
    tool_word = "stop"  # Ollama has no word of its own for a turn that called tools

    def __init__(self, model: str, messages=()):
        self.model = model

    def message_line(self, content: str, done: bool, thinking: Optional[str] = None,
                     calls: bool = False) -> dict:
        message = {"role": "assistant", "content": content}
        if thinking is not None:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = [{"function": {"index": i, "name": c.name,
                                                   "arguments": c.as_object()}}
                                     for i, c in enumerate(self.plan.calls)]
        return {"model": self.model, "created_at": CREATED_AT, "message": message,
                "done": done}

    def reasoning(self, piece: str) -> bytes:
        return line(self.message_line("", False, piece))

    def text(self, piece: str) -> bytes:
        return line(self.message_line(piece, False))

    def tail(self) -> List[bytes]:
        return [line(self.message_line("", False, calls=True))] if self.plan.calls else []

    def final(self, content: str, thinking: Optional[str] = None, calls: bool = False) -> dict:
        # Durations in nanoseconds, as Ollama reports them; fixed so answers are reproducible.
        plan = self.plan
        return {**self.message_line(content, True, thinking, calls), "done_reason": plan.finish,
                "total_duration": 1_000_000, "load_duration": 100_000,
                "prompt_eval_count": plan.input_tokens, "prompt_eval_duration": 200_000,
                "eval_count": plan.output_tokens, "eval_duration": 700_000}

    def end(self) -> List[bytes]:
        return [line(self.final(""))]

    def error(self, message: str) -> bytes:
        return line({"error": message})

    def malformed(self) -> bytes:
        return b'{"model": "' + self.model.encode() + b'", "message": {"content": \n'

    def unknown(self) -> bytes:
        return line({"model": self.model, "created_at": CREATED_AT,
                     "status": "emulator_unknown", "done": False})

    def whole(self) -> bytes:
        plan = self.plan
        return dumps(self.final(plan.text, plan.thinking if plan.reasoning else None,
                                bool(plan.calls)))

    @classmethod
    def error_body(cls, status: int, message: str):
        return dumps({"error": message}), "application/json"


def model_not_found(model: str) -> web.Response:
    body = {"error": f'model "{model}" not found, try pulling it first'}
    return web.Response(status=404, body=dumps(body), content_type="application/json")


@rejecting(NDJSONFraming)
async def chat(request: web.Request) -> web.StreamResponse:
    data = await json_object(request)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required")
    if full_name(model) not in MODELS:
        return model_not_found(model)
    options = {} if data.get("options") is None else data["options"]
    if not isinstance(options, dict):
        raise BadRequest("options must be an object")
    stream = flag_field(data, "stream", True)
    asked = Asked(reasoning=think_asks(data.get("think")),
                  limit=num_predict(options.get("num_predict")))
    if not data.get("messages"):
        return loaded(model)
    messages = message_list(data["messages"], ROLES)
    turn = Turn("ollama", messages, model, NDJSONFraming(model, messages), stream,
                directive_source=question_text(messages), asked=asked, tools=ollama_state(data))
    return await answer(request, turn)


def think_asks(think) -> Optional[bool]:
    if think is None or isinstance(think, bool):
        return think
    if isinstance(think, str) and think in THINK_LEVELS:
        return True
    raise BadRequest(f"invalid think value {think!r}: use true, false, or one of "
                     f"{', '.join(THINK_LEVELS)}")


def num_predict(value) -> Optional[int]:
    """The token limit; a negative one means none (-1 endless, -2 fill the context)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("option num_predict must be a whole number")
    return value if value >= 0 else None


def loaded(model: str) -> web.Response:
    """No messages: Ollama only loads the model and says so."""
    body = {"model": model, "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": ""}, "done_reason": "load", "done": True}
    return web.Response(body=dumps(body), content_type="application/json")


def model_entry(name: str) -> dict:
    family = name.split(":")[0].rstrip("0123456789.") or name
    return {
        "name": name, "model": name, "modified_at": MODIFIED_AT, "size": 1_000_000,
        "digest": sha256(name.encode()).hexdigest(),
        "details": {"parent_model": "", "format": "gguf", "family": family,
                    "families": [family], "parameter_size": "1B",
                    "quantization_level": "Q4_K_M"},
    }


async def tags(request: web.Request) -> web.Response:
    return web.Response(body=dumps({"models": [model_entry(m) for m in MODELS]}),
                        content_type="application/json")


async def running(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


ROUTES = [
    ("POST", f"{PREFIX}/api/chat", chat),
    ("GET", f"{PREFIX}/api/tags", tags),
    ("GET", PREFIX, running),
]
