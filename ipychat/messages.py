"""Chat messages and the g4f ``format_prompt`` adapter (see shared/PROTOCOLS.md)."""

from __future__ import annotations

from typing import Dict, List

from .errors import UsageError

Message = Dict[str, str]
Messages = List[Message]

ROLES = ("system", "user", "assistant")


def check_messages(messages) -> Messages:
    """Return ``messages`` as a list, or raise a one-line ``UsageError``."""
    if isinstance(messages, (str, bytes)) or messages is None:
        raise UsageError("messages must be a list of {'role': ..., 'content': ...} dicts")
    messages = list(messages)
    if not messages:
        raise UsageError("no messages to send", hint="Give at least one message.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise UsageError(f"message {i} needs a 'role' and a 'content'")
    return messages


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """Flatten ``messages`` into one prompt string, as g4f did.

    One message without special tokens is sent as its content unchanged;
    otherwise each message becomes ``Role: content`` and a final
    ``Assistant:`` asks for the answer.
    """
    messages = check_messages(messages)
    if not add_special_tokens and len(messages) == 1:
        return messages[0]["content"]
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def last_user_text(messages: Messages) -> str:
    """The content of the last user message ('' when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""
