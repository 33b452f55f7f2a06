"""The one-pass escaper: same output as the multi-pass reference, Markdown's
own line endings only, and no big copies of a big answer."""

import tracemalloc
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipychat import markdown
from ipychat.markdown import safe_markdown
from tests.support import reference_markdown

# What the escaper reacts to, and little else: fences, list and quote markers,
# indentation, code spans, tags, entities, script links, table pipes.
ALPHABET = st.sampled_from(
    ["`", "```", "~~~", " ", "   ", "\t", "\n", "\r", "\r\n", "- ", "1. ", "> ", "<", "&",
     "](", "]:", "javascript", "JavaScript", "data", ":", "\\", "|", "\x01", "a", "b", "x<y"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_same_output_as_the_multi_pass_reference(text):
    assert safe_markdown(text) == reference_markdown.safe_markdown(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=25).map("".join), st.lists(ALPHABET, max_size=25).map("".join))
def test_several_texts_are_escaped_each_on_its_own(first, second):
    assert safe_markdown(first, second) == safe_markdown(first) + safe_markdown(second)


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_only_markdown_line_endings_end_a_line(separator):
    # Markdown reads "a<sep>```" as one paragraph line: no fence opens, so the
    # tag below is prose and would run. Breaking lines at <sep> let it through.
    text = f"a{separator}```\n<img src=x onerror=1>\n"
    assert "<img" not in safe_markdown(text)


def test_code_is_kept_and_everything_else_escaped():
    text = ("Hi <b> & [x](javascript:alert(1)) `a<b` \n```\nif a < b: pass\n```\n"
            "[r]:\x01 data:text/html,x\n")
    assert safe_markdown(text) == (
        "Hi &lt;b> &amp; [x](#unsafe-link:alert(1)) `a<b` \n```\nif a < b: pass\n```\n"
        "[r]:\x01 #unsafe-link:text/html,x\n")


def test_nothing_to_escape_gives_the_text_itself():
    text = "plain words\n```\ncode < here\n```\n" * 1000
    assert safe_markdown(text) is text


@pytest.mark.parametrize("text", [
    "Some **prose** with `x<y` code & a <tag>, on and on.\n" * 40_000,  # code spans
    "Prose & a <tag> with no code at all.\n" * 40_000,  # one long escaped run
    "```\n" + "if a < b: pass\n" * 100_000 + "```\n",  # one long fence
])
def test_a_big_answer_costs_at_most_its_copy_and_little_more(text):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        safe = safe_markdown(text)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # The output itself, plus its pieces once (joined at the end), plus a
    # bounded working set; the multi-pass escaper peaked at 3.8x.
    assert peak <= 2.2 * len(safe)



@settings(max_examples=2000, deadline=None)
@given(st.lists(ALPHABET | st.just("\uffff"), max_size=40).map("".join),
       st.integers(min_value=1, max_value=12))
@example("](\njavascript:", 1)  # a script link across a line break
@example("x]:\r\n\x01data:", 2)
@example("`a\rb` <", 1)  # a code span across a lone CR (Markdown's line end)
def test_windows_cut_where_nothing_reaches_across(text, window):
    # Tiny windows: every cut point a big answer would see, on small texts.
    with mock.patch.object(markdown, "_WINDOW", window):
        assert safe_markdown(text) == reference_markdown.safe_markdown(text)
