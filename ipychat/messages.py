"""Chat messages and the g4f ``format_prompt`` adapter (see shared/PROTOCOLS.md).

Messages are neutral: each provider writes them in its own form when it
builds a request. Besides ``system``/``user``/``assistant`` text, an answer
that used tools leaves two more shapes in a conversation:

- ``{"role": "assistant", "content": text, "tool_calls": [{"id", "name", "arguments"}]}``
  (``arguments``: the JSON text the model sent);
- ``{"role": "tool", "tool_call_id", "name", "content", "is_error"}``: one result.
"""

from __future__ import annotations

import hashlib
from typing import Dict, List

from .errors import UsageError

Message = Dict[str, object]
Messages = List[Message]
#: The neutral parts of a content list (a question with images); each
#: provider turns them into its own form.
PART_TYPES = ("text", "image")

ROLES = ("system", "user", "assistant")
SHAPE = "messages must be a list of {'role': ..., 'content': ...} dicts"
EXAMPLE = "For example [{'role': 'user', 'content': 'hi'}]."


def check_messages(messages) -> Messages:
    """Return ``messages`` as a list, or raise a one-line ``UsageError``."""
    # A str, bytes or dict is iterable but never a list of messages.
    if messages is None or isinstance(messages, (str, bytes, dict)):
        raise UsageError(SHAPE, hint=EXAMPLE)
    try:
        messages = list(messages)
    except TypeError:
        raise UsageError(SHAPE, hint=EXAMPLE) from None
    if not messages:
        raise UsageError("no messages to send", hint="Give at least one message.")
    for i, message in enumerate(messages):
        check_message(i, message)
    return messages


def check_message(i: int, message) -> None:
    if not isinstance(message, dict) or "role" not in message or "content" not in message:
        raise UsageError(f"message {i} needs a 'role' and a 'content'", hint=EXAMPLE)
    role, content = message["role"], message["content"]
    if not isinstance(role, str) or not role:
        raise UsageError(f"message {i} has role {role!r}",
                         hint=f"Use one of: {', '.join(ROLES)}.")
    if "tool_calls" in message and not _are_calls(message["tool_calls"]):
        raise UsageError(f"message {i} has tool_calls that are not a list of "
                         "{'id', 'name', 'arguments'} strings")
    if isinstance(content, list) and all(_is_part(part) for part in content):
        return
    if not isinstance(content, str):
        raise UsageError(f"message {i} has a {type(content).__name__} content, not text",
                         hint="Give the content as a string.")


def _are_calls(calls) -> bool:
    return isinstance(calls, list) and all(
        isinstance(call, dict) and all(isinstance(call.get(key), str)
                                       for key in ("id", "name", "arguments"))
        for call in calls)


def _is_part(part) -> bool:
    if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
        return False
    if part["type"] == "text":
        return isinstance(part.get("text"), str)
    return isinstance(part.get("media_type"), str) and isinstance(part.get("data"), str)


def text_of(content) -> str:
    """The text of a content: itself, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


def without_image_bytes(messages: Messages) -> Messages:
    """``messages`` with each image part's data replaced by its size and SHA-256:
    what an answer and the log keep of a question (one image may be 20 MB), and
    as telling for equality as the bytes themselves."""
    kept = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(_has_data(part) for part in content):
            content = [_described(part) if _has_data(part) else part for part in content]
            message = {**message, "content": content}
        kept.append(message)
    return kept


def _has_data(part) -> bool:
    return isinstance(part, dict) and part.get("type") == "image" and "data" in part


def _described(part: dict) -> dict:
    data = str(part["data"])
    return {**{k: v for k, v in part.items() if k != "data"}, "data_chars": len(data),
            "sha256": hashlib.sha256(data.encode()).hexdigest()}


def has_images(messages: Messages) -> bool:
    return any(isinstance(m.get("content"), list)
               and any(part.get("type") == "image" for part in m["content"])
               for m in messages)


def has_tool_turns(messages: Messages) -> bool:
    return any(_is_tool_result(m) or m.get("tool_calls") for m in messages)


def _is_tool_result(message) -> bool:
    # ipychat's tool results name their call; a bare "tool" message from a
    # caller is some other role, which each protocol maps its own way.
    return message.get("role") == "tool" and "tool_call_id" in message


def folded(messages: Messages) -> Messages:
    """``messages`` with tool exchanges written as text, for a provider that
    takes no tools: each call and result becomes a bracketed line of the
    assistant message it belongs to, so a follow-up can still refer to them."""
    if not has_tool_turns(messages):
        return messages
    out: Messages = []
    for message in messages:
        role = message["role"]
        if role != "assistant" and not _is_tool_result(message):
            out.append(message)
            continue
        text = text_of(message["content"]) if role == "assistant" else _result_line(message)
        text = "\n".join([text, *map(_call_line, message.get("tool_calls") or [])]).strip("\n")
        if out and out[-1].get("folded"):
            joined = "\n".join(part for part in (out[-1]["content"], text) if part)
            out[-1] = {**out[-1], "content": joined}
        else:
            out.append({"role": "assistant", "content": text, "folded": True})
    return [{k: v for k, v in m.items() if k != "folded"} for m in out]


def _call_line(call: dict) -> str:
    return f"[called {call['name']}({call['arguments']})]"


def _result_line(message: dict) -> str:
    what = "raised" if message.get("is_error") else "returned"
    return f"[{message.get('name') or 'the tool'} {what}: {text_of(message['content'])}]"


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """Flatten ``messages`` into one prompt string, as g4f did.

    One message without special tokens is sent as its content unchanged;
    otherwise each message becomes ``Role: content`` and a final
    ``Assistant:`` asks for the answer.
    """
    messages = check_messages(messages)
    if not add_special_tokens and len(messages) == 1:
        return text_of(messages[0]["content"])
    # str.capitalize, as g4f: "user" -> "User" (and "USER" -> "User").
    lines = [f"{m['role'].capitalize()}: {text_of(m['content'])}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def last_user_text(messages: Messages) -> str:
    """The content of the last user message ('' when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content", ""))
    return ""
