"""Retrying a request that failed before its answer started, as the openai
and anthropic SDKs do.

Retried: connection failures, a timeout or a reset before the answer's
stream opened, HTTP 408, 409, 429 and 5xx, and any response that says
``x-should-retry: true`` (``false`` overrules the status). Never retried:
anything after the first text or reasoning was shown (that answer is cut
short; a second answer glued to half of the first would be worse), and
every error a retry cannot change (a key, a model name, a bad request).

Waits: what the server asks (``retry-after-ms``, ``Retry-After`` in seconds
or as an HTTP date) up to ``MAX_SERVER_WAIT``; else 0.5 s doubling, at most
8 s, less up to a quarter at random so that many clients do not come back
in step. A server that asks for longer than ``MAX_SERVER_WAIT`` gets no
retry: the error says how long it asked for.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Optional

from .. import errors
from ..events import Retry, seconds_text

DEFAULT_RETRIES = 2
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
#: Longest server-requested wait honoured, in seconds.
MAX_SERVER_WAIT = 60.0
RETRIED_STATUSES = (408, 409, 429)


def check_retries(value) -> int:
    if value is None:
        return DEFAULT_RETRIES
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.UsageError(f"max_retries must be a whole number from 0 up, not {value!r}")
    return value


def retryable(err: errors.ChatError, stream_opened: bool) -> bool:
    """Whether sending the same request again may help."""
    should = getattr(err, "should_retry", None)
    if should is not None:
        return should
    if isinstance(err, errors.HTTPStatusError):
        return err.status in RETRIED_STATUSES or err.status >= 500
    if isinstance(err, errors.AuthenticationRequired):
        return False
    # Failures before the answer's stream opened: the connection, its timeout, a reset.
    return isinstance(err, (errors.ConnectionFailed, errors.ChatTimeout,
                            errors.StreamCutShort)) and not stream_opened


def server_wait(headers) -> Optional[float]:
    """Seconds the server asked to wait (``retry-after-ms``, ``Retry-After``), if any."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        seconds = _number(value)
        return None if seconds is None else seconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number else None


def backoff(retry: int, rand=random.random) -> float:
    """The wait before retry number ``retry`` (from 0) when the server asked for none."""
    return min(INITIAL_DELAY * 2 ** retry, MAX_DELAY) * (1 - 0.25 * rand())


def wait_before(retry: int, err: errors.ChatError) -> float:
    """Seconds to wait before retry ``retry``; raises when the server asks for too long."""
    asked = server_wait(getattr(err, "headers", None))
    if asked is None:
        return backoff(retry)
    if asked > MAX_SERVER_WAIT:
        err.message = (f"{err.message.rstrip('.')}; the server asked to wait "
                       f"{seconds_text(asked)} before trying again")
        err.hint = "Try again later, or lower the rate of requests."
        raise err
    return asked


def reason_of(err: errors.ChatError) -> str:
    if isinstance(err, errors.HTTPStatusError):
        return f"HTTP {err.status}"
    return errors.one_line(err.message, 60)


def after_attempts(err: errors.ChatError, attempts: int) -> errors.ChatError:
    """``err``, saying how many attempts were made when there was more than one."""
    if attempts > 1:
        err.message = f"after {attempts} attempts: {err.message}"
        err.args = (err.message,)
    return err
