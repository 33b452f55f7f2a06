"""The error family: one-line messages that name the provider and say what
to do next, and the helpers that keep secrets out of them."""

from __future__ import annotations

import pytest

from ipychat import errors
from ipychat.errors import hide_credentials, one_line, redact


def test_one_line_collapses_whitespace_and_cuts():
    assert one_line("  a\n\tb\r\n  c ") == "a b c"
    cut = one_line("x" * 300)
    assert len(cut) == errors.QUOTE_LIMIT and cut.endswith("…")
    assert one_line("abcdef", limit=4) == "abc…"
    assert one_line(ValueError("bad\nthing")) == "bad thing"


@pytest.mark.parametrize("text, secrets, expected", [
    ("key sk-12345 and sk-12345", ["sk-12345"], "key *** and ***"),
    ("cookie abcd, key efgh", ["abcd", "efgh"], "cookie ***, key ***"),
    ("short abc stays", ["abc"], "short abc stays"),  # too short to redact safely
    ("nothing to hide", None, "nothing to hide"),
    ("nothing to hide", [None, ""], "nothing to hide"),
])
def test_redact_replaces_each_secret(text, secrets, expected):
    assert redact(text, secrets) == expected


@pytest.mark.parametrize("url, expected", [
    ("http://user:pw@proxy:8080/x", "http://***@proxy:8080/x"),
    ("socks5://u:p@127.0.0.1:1080", "socks5://***@127.0.0.1:1080"),
    ("https://token@host/path", "https://***@host/path"),
    ("http://host/a@b", "http://host/a@b"),
    ("http://proxy:8080", "http://proxy:8080"),
    ("via http://a:b@one and http://c:d@two", "via http://***@one and http://***@two"),
])
def test_hide_credentials_hides_user_and_password(url, expected):
    assert hide_credentials(url) == expected


def test_chat_error_is_one_line_with_provider_and_hint():
    err = errors.ChatError("it broke\nbadly.", provider="Lockchat", hint="Try again.")
    assert str(err) == "Lockchat: it broke badly. Try again."
    assert err.message == "it broke\nbadly." and err.provider == "Lockchat"


def test_render_traceback_is_the_one_line_ipython_shows():
    err = errors.StreamCutShort("cut", provider="Cromicle")
    lines = err._render_traceback_()
    assert len(lines) == 1 and lines[0].endswith(str(err)) and "\n" not in lines[0]


def test_provider_not_found_lists_the_known_ones():
    err = errors.ProviderNotFound("nope", ["b", "a"])
    assert str(err) == "unknown provider 'nope'. Known providers: a, b."
    assert err.name == "nope" and isinstance(err, errors.ChatError)


def test_http_status_error_quotes_the_server_shortly():
    err = errors.HTTPStatusError(500, "boom\n" + "x" * 1000, provider="P", hint="Later.")
    assert str(err).startswith("P: HTTP 500: boom xxx") and str(err).endswith("…. Later.")
    assert err.status == 500 and len(str(err)) < 300
    assert str(errors.HTTPStatusError(502, provider="P")) == "P: HTTP 502."


def test_authentication_required_with_and_without_status():
    sent = errors.AuthenticationRequired("bad key", status=401, provider="P")
    assert str(sent).startswith("P: HTTP 401: bad key. Check the API key")
    unsent = errors.AuthenticationRequired("needs cookies", provider="P", hint="Pass cookies=.")
    assert (str(unsent), unsent.status) == ("P: needs cookies. Pass cookies=.", None)


@pytest.mark.parametrize("retry_after, says", [("7", "retry after 7 s"), (None, "retry later")])
def test_rate_limited_says_when_to_retry(retry_after, says):
    err = errors.RateLimited("slow down", retry_after=retry_after, provider="P")
    assert isinstance(err, errors.HTTPStatusError) and err.status == 429
    assert str(err) == f"P: HTTP 429: slow down. Rate limited: {says}."


def test_model_not_found_names_the_model_and_what_to_do():
    err = errors.ModelNotFound("gpt-4", "The model: `gpt-4` does not exist", provider="P")
    assert str(err) == ("P: model 'gpt-4' not found (The model: `gpt-4` does not exist). "
                        "Pick another model with --model.")


def test_malformed_stream_quotes_the_offending_bytes():
    err = errors.MalformedStreamError("an event is not JSON", b"{oops\xff", provider="P")
    assert str(err).startswith("P: malformed stream, an event is not JSON: '{oops\ufffd'")
    assert err.line == "{oops\ufffd"


def test_all_providers_failed_lists_each_failure():
    err = errors.AllProvidersFailed([("A", errors.ChatTimeout("slow", provider="A")),
                                     ("B", ValueError("x\ny"))])
    assert str(err) == "every provider failed (A: slow; B: ValueError: x y)."
    assert len(err.failures) == 2


ALL = [
    errors.UsageError("bad option"), errors.ProviderNotFound("x", ["a"]),
    errors.ConnectionFailed("refused"), errors.ChatTimeout("no answer"),
    errors.HTTPStatusError(500, "x"), errors.AuthenticationRequired("no key"),
    errors.RateLimited("x"), errors.ModelNotFound("m"), errors.MalformedStreamError("bad"),
    errors.ProviderError("overloaded"), errors.StreamCutShort("cut"),
    errors.AllProvidersFailed([("A", errors.ChatError("x\ny"))]),
]


@pytest.mark.parametrize("err", ALL, ids=lambda e: type(e).__name__)
def test_every_error_is_a_one_line_chat_error(err):
    assert isinstance(err, errors.ChatError)
    assert "\n" not in str(err) and str(err).strip() == str(err)


# An HTTPStatusError gets its hint from the status (see test_http); these carry their own.
NEEDS_NEXT_STEP = [e for e in ALL if type(e) not in (errors.UsageError, errors.ProviderError,
                                                     errors.AllProvidersFailed,
                                                     errors.HTTPStatusError)]


@pytest.mark.parametrize("err", NEEDS_NEXT_STEP, ids=lambda e: type(e).__name__)
def test_errors_a_user_hits_say_what_to_do_next(err):
    assert err.hint and str(err).endswith(err.hint)
