"""The classic providers' services: Cromicle, OpenAssistant and Vitalentum
(shared/PROTOCOLS.md has their wire facts). None has a form for reasoning or
usage; OpenAssistant's ``max_new_tokens`` and Vitalentum's ``max_tokens`` cut
the answer."""

from __future__ import annotations

import itertools
import json
from hashlib import sha256
from typing import Dict, List, Optional

from aiohttp import web

from ..messages import last_user_text
from .inbound import BadRequest, json_object, limit_field, rejecting, text_field
from .openai_api import OpenAIFraming
from .plan import Asked
from .reply import flattened_directive_source, unflatten
from .wire import INVALID_BYTES, STATE, Framing, Turn, answer, dumps, sse

CROMICLE_TOKEN = "abc"
OA_COOKIE = "__Secure-next-auth.session-token"
OA_PROMPT_HEAD, OA_PROMPT_TAIL = "<s>[INST]\n", "\n[/INST]"
CREATED_AT = "2023-09-01T00:00:00Z"


# -- Cromicle: one POST, raw text back ----------------------------------------


class RawText(Framing):
    content_type = "text/plain; charset=utf-8"

    def text(self, piece: str) -> bytes:
        return piece.encode("utf-8")

    def malformed(self) -> bytes:
        # Raw text has no frames to break: the only bad thing it can carry is bad UTF-8.
        return INVALID_BYTES

    @classmethod
    def error_body(cls, status: int, message: str):
        return message.encode("utf-8"), "text/plain; charset=utf-8"


@rejecting(RawText)
async def cromicle_chat(request: web.Request) -> web.StreamResponse:
    data = await json_object(request)
    prompt = data.get("message")
    if not isinstance(prompt, str):
        raise BadRequest("'message' must be a string")
    expected = sha256(CROMICLE_TOKEN.encode() + prompt.encode("utf-8")).hexdigest()
    if data.get("token") != CROMICLE_TOKEN or data.get("hash") != expected:
        raise BadRequest("Forbidden: invalid token or hash", status=403)
    turn = Turn("cromicle", unflatten(prompt), None, RawText(),
                directive_source=flattened_directive_source(prompt))
    return await answer(request, turn)


# -- OpenAssistant: five steps over one cookie session ------------------------


class OAChats:
    """Open chats and their messages, and which chats were deleted."""

    def __init__(self):
        self.chats: Dict[str, Dict[str, dict]] = {}
        self.deleted: List[str] = []
        #: Each assistant message's ``max_new_tokens``, for when it is streamed.
        self.limits: Dict[str, Optional[int]] = {}
        self._ids = itertools.count(1)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def chat(self, chat_id) -> Dict[str, dict]:
        if not isinstance(chat_id, str) or chat_id not in self.chats:
            raise BadRequest(f"chat {chat_id!r} not found", status=404)
        return self.chats[chat_id]


class OAEvents(Framing):
    """``data: {...}`` events, each followed by a blank line (valid SSE); the
    stream has no finish reason, so a cut shows only in the text."""

    def __init__(self, message_id: str):
        self.message_id = message_id

    def head(self) -> List[bytes]:
        return [sse({"event_type": "pending", "queue_position": 0, "queue_size": 1})]

    def text(self, piece: str) -> bytes:
        return sse({"event_type": "token", "text": piece})

    def end(self) -> List[bytes]:
        message = {"id": self.message_id, "role": "assistant", "state": "complete",
                   "content": self.plan.text}
        return [sse({"event_type": "message", "message": message})]

    def error(self, message: str) -> bytes:
        return sse({"event_type": "error", "error": message})

    def malformed(self) -> bytes:
        return b'data: {"event_type": "token", "text": \n\n'

    def unknown(self) -> bytes:
        return sse({"event_type": "emulator_unknown"})

    @classmethod
    def error_body(cls, status: int, message: str):
        return dumps({"message": message, "errorCode": status}), "application/json"


def oa_chats(request: web.Request) -> OAChats:
    extra = request.app[STATE].extra
    return extra.setdefault("openassistant", OAChats())


def oa_session(handler):
    """Every OpenAssistant step needs the browser's session cookie."""

    @rejecting(OAEvents)
    async def checked(request: web.Request) -> web.StreamResponse:
        if not request.cookies.get(OA_COOKIE):
            raise BadRequest("Unauthorized: sign in to open-assistant.io first", status=401)
        return await handler(request, oa_chats(request))

    return checked


def role_of(messages: Dict[str, dict], message_id) -> Optional[str]:
    found = messages.get(message_id) if isinstance(message_id, str) else None
    return found["role"] if found else None


def json_reply(value) -> web.Response:
    return web.Response(body=dumps(value), content_type="application/json")


@oa_session
async def oa_create_chat(request: web.Request, chats: OAChats) -> web.Response:
    chat_id = chats.new_id("chat")
    chats.chats[chat_id] = {}
    return json_reply({"id": chat_id, "created_at": CREATED_AT, "modified_at": CREATED_AT,
                       "title": None, "hidden": False, "messages": []})


@oa_session
async def oa_prompter(request: web.Request, chats: OAChats) -> web.Response:
    data = await json_object(request)
    messages = chats.chat(data.get("chat_id"))
    content = text_field(data, "content")
    parent_id = data.get("parent_id")
    if parent_id is not None and role_of(messages, parent_id) != "assistant":
        raise BadRequest(f"parent message {parent_id!r} not found in this chat")
    message = {"id": chats.new_id("msg"), "role": "prompter", "content": content,
               "parent_id": parent_id, "chat_id": data["chat_id"], "created_at": CREATED_AT}
    messages[message["id"]] = message
    return json_reply(message)


@oa_session
async def oa_assistant(request: web.Request, chats: OAChats) -> web.Response:
    data = await json_object(request)
    messages = chats.chat(data.get("chat_id"))
    parent_id = data.get("parent_id")
    if role_of(messages, parent_id) != "prompter":
        raise BadRequest(f"parent message {parent_id!r} not found in this chat")
    model = text_field(data, "model_config_name")
    sampling = data.get("sampling_parameters", {})
    if not isinstance(sampling, dict):
        raise BadRequest("'sampling_parameters' must be an object")
    limit = limit_field(sampling, "max_new_tokens", "sampling_parameters.")
    message = {"id": chats.new_id("msg"), "role": "assistant", "state": "pending",
               "parent_id": parent_id, "chat_id": data["chat_id"], "model_name": model,
               "created_at": CREATED_AT}
    messages[message["id"]] = message
    # Kept aside, not in the reply: the real service does not echo sampling parameters.
    chats.limits[message["id"]] = limit
    return json_reply(message)


@oa_session
async def oa_events(request: web.Request, chats: OAChats) -> web.StreamResponse:
    messages = chats.chat(request.query.get("chat_id"))
    message_id = request.query.get("message_id")
    if role_of(messages, message_id) != "assistant":
        raise BadRequest(f"message {message_id!r} not found in this chat", status=404)
    message = messages[message_id]
    if message["state"] != "pending":
        raise BadRequest(f"message {message_id!r} was already answered")
    message["state"] = "in_progress"
    prompt = oa_prompt(messages[message["parent_id"]]["content"])
    turn = Turn("openassistant", unflatten(prompt), message["model_name"], OAEvents(message_id),
                directive_source=flattened_directive_source(prompt),
                asked=Asked(limit=chats.limits.get(message_id)))
    response = await answer(request, turn)
    message["state"] = "complete"
    return response


def oa_prompt(content: str) -> str:
    """The flattened prompt inside the ``<s>[INST] ... [/INST]`` wrapper."""
    if content.startswith(OA_PROMPT_HEAD) and content.endswith(OA_PROMPT_TAIL):
        return content[len(OA_PROMPT_HEAD): -len(OA_PROMPT_TAIL)]
    return content


@oa_session
async def oa_delete_chat(request: web.Request, chats: OAChats) -> web.Response:
    chat_id = request.query.get("chat_id")
    chats.chat(chat_id)
    del chats.chats[chat_id]
    chats.deleted.append(chat_id)
    return web.Response(status=204)


# -- Vitalentum: the history as a JSON string, OpenAI-style chunks back --------


class VitalentumFraming(OpenAIFraming):
    @classmethod
    def error_body(cls, status: int, message: str):
        return dumps({"error": message}), "application/json"


def vitalentum_history(conversation) -> List[dict]:
    try:
        history = json.loads(conversation)["history"]
    except (TypeError, ValueError, KeyError):
        raise BadRequest("'conversation' must be a JSON string of {\"history\": [...]}") from None
    if not isinstance(history, list) or not history:
        raise BadRequest("'history' must be a non-empty list")
    messages = []
    for i, item in enumerate(history):
        if not isinstance(item, dict) or item.get("speaker") not in ("human", "bot") \
                or not isinstance(item.get("text"), str):
            raise BadRequest(f"history[{i}] needs a speaker (human or bot) and a text")
        role = "user" if item["speaker"] == "human" else "assistant"
        messages.append({"role": role, "content": item["text"]})
    return messages


@rejecting(VitalentumFraming)
async def vitalentum_converse(request: web.Request) -> web.StreamResponse:
    data = await json_object(request)
    messages = vitalentum_history(data.get("conversation"))
    temperature: Optional[object] = data.get("temperature")
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, (int, float))):
        raise BadRequest("'temperature' must be a number")
    turn = Turn("vitalentum", messages, None, VitalentumFraming("gpt-3.5-turbo", messages),
                directive_source=last_user_text(messages),
                asked=Asked(limit=limit_field(data, "max_tokens")))
    return await answer(request, turn)


ROUTES = [
    ("POST", "/chat", cromicle_chat),
    ("POST", "/api/chat", oa_create_chat),
    ("DELETE", "/api/chat", oa_delete_chat),
    ("POST", "/api/chat/prompter_message", oa_prompter),
    ("POST", "/api/chat/assistant_message", oa_assistant),
    ("POST", "/api/chat/events", oa_events),
    ("POST", "/api/converse-edge", vitalentum_converse),
]
