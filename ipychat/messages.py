"""Chat messages and the g4f ``format_prompt`` adapter (see shared/PROTOCOLS.md)."""

from __future__ import annotations

from typing import Dict, List

from .errors import UsageError

Message = Dict[str, str]
Messages = List[Message]

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
    if not isinstance(content, str):
        raise UsageError(f"message {i} has a {type(content).__name__} content, not text",
                         hint="Give the content as a string.")


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """Flatten ``messages`` into one prompt string, as g4f did.

    One message without special tokens is sent as its content unchanged;
    otherwise each message becomes ``Role: content`` and a final
    ``Assistant:`` asks for the answer.
    """
    messages = check_messages(messages)
    if not add_special_tokens and len(messages) == 1:
        return messages[0]["content"]
    # str.capitalize, as g4f: "user" -> "User" (and "USER" -> "User").
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def last_user_text(messages: Messages) -> str:
    """The content of the last user message ('' when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""
