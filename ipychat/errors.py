"""One error family for everything a user can expect to go wrong.

Every message is a single line that says what happened and what to do next.
IPython shows a ``ChatError`` without a traceback (``_render_traceback_``), so a
notebook user sees that one line and nothing else.
"""

from __future__ import annotations

import re

#: How much of a server's error text or a bad stream line we quote.
QUOTE_LIMIT = 200


def one_line(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat


def redact(text: str, secrets) -> str:
    """Replace every non-trivial secret in ``text`` by ``***``."""
    for secret in secrets or ():
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "***")
    return text


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def hide_credentials(url: str) -> str:
    """``http://user:pw@host`` -> ``http://***@host`` (proxy URLs may carry passwords)."""
    return _URL_CREDENTIALS.sub("***@", str(url))


class ChatError(Exception):
    """Base of every expected ipychat failure."""

    hint = ""

    def __init__(self, message: str, *, provider: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.provider = provider
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        where = f"{self.provider}: " if self.provider else ""
        tail = f" {self.hint}" if self.hint else ""
        return one_line(f"{where}{self.message.rstrip('.')}.{tail}", limit=600)

    def _render_traceback_(self):
        # IPython calls this instead of printing a traceback.
        return [f"ChatError: {self}"]


class UsageError(ChatError):
    """Bad input from the caller: empty prompt, bad option, bad value."""


class ProviderNotFound(ChatError):
    def __init__(self, name: str, known):
        super().__init__(
            f"unknown provider {name!r}",
            hint=f"Known providers: {', '.join(sorted(known)) or 'none'}.",
        )
        self.name = name


class ConnectionFailed(ChatError):
    hint = "Check the base URL, the proxy and that the server is running."


class ChatTimeout(ChatError):
    hint = "The server may be overloaded; try again or raise the timeout (timeout=seconds)."


class HTTPStatusError(ChatError):
    """The server answered with a non-success status."""

    def __init__(self, status: int, detail: str = "", *, provider=None, hint=None):
        text = f"HTTP {status}" + (f": {one_line(detail)}" if detail else "")
        super().__init__(text, provider=provider, hint=hint)
        self.status = status
        self.detail = detail


class AuthenticationRequired(ChatError):
    """Missing or rejected credentials (``status`` is None when nothing was sent)."""

    hint = "Check the API key or cookies for this provider."

    def __init__(self, message: str, *, status: int | None = None, provider=None, hint=None):
        text = f"HTTP {status}: {one_line(message)}" if status else message
        super().__init__(text, provider=provider, hint=hint)
        self.status = status


class RateLimited(HTTPStatusError):
    def __init__(self, detail="", *, retry_after: str | None = None, provider=None):
        wait = f"retry after {retry_after} s" if retry_after else "retry later"
        super().__init__(429, detail, provider=provider, hint=f"Rate limited: {wait}.")
        self.retry_after = retry_after


class ModelNotFound(ChatError):
    def __init__(self, model: str, detail: str = "", *, provider=None):
        extra = f" ({one_line(detail, 120)})" if detail else ""
        super().__init__(
            f"model {model!r} not found{extra}",
            provider=provider,
            hint="Pick another model with --model.",
        )
        self.model = model


class MalformedStreamError(ChatError):
    """The answer stream broke the protocol; ``line`` is the offending bit."""

    hint = "The server sent something this provider does not understand."

    def __init__(self, what: str, line: str | bytes = "", *, provider=None):
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        quoted = f": {one_line(line, 80)!r}" if line else ""
        super().__init__(f"malformed stream, {what}{quoted}", provider=provider)
        self.line = line


class ProviderError(ChatError):
    """The server reported an error inside the stream or in a JSON reply."""


class StreamCutShort(ChatError):
    """The connection ended before the answer's end marker."""

    hint = "The answer may be incomplete; try again."


def _failure_text(err) -> str:
    # A ChatError's str() starts with its provider, which the list already names.
    return err.message if isinstance(err, ChatError) else f"{type(err).__name__}: {err}"


class AllProvidersFailed(ChatError):
    def __init__(self, failures):
        lines = "; ".join(f"{name}: {one_line(_failure_text(err), 160)}"
                          for name, err in failures)
        super().__init__(f"every provider failed ({lines})")
        self.failures = list(failures)
