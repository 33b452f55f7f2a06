"""The pure event core: the <think> splitter at every split, finish words,
usage counts, and a foreign (g4f 8.x) class's response objects."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipychat.events import (Finish, Reasoning, Text, ThinkSplitter, Usage, finish,
                            from_foreign, usage)


def run(pieces):
    splitter = ThinkSplitter()
    events = [e for piece in pieces for e in splitter.feed(piece)] + splitter.close()
    return ("".join(e.text for e in events if e.kind == "reasoning"),
            "".join(e.text for e in events if e.kind == "text"))


def every_split(text):
    yield [text]
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
    yield list(text)


@pytest.mark.parametrize("content, expected", [
    ("<think>hmm, so</think>\n\nYes.", ("hmm, so", "Yes.")),
    ("\n <think>a</think>b", ("a", "b")),
    ("<think></think>Yes", ("", "Yes")),
    ("Yes <think>no</think>", ("", "Yes <think>no</think>")),  # not at the start: text
    ("<thin", ("", "<thin")),  # a tag cut short by the end of the stream is text
    ("<think>never closed", ("never closed", "")),
    ("<think>a </thi", ("a </thi", "")),
    ("plain", ("", "plain")),
    ("", ("", "")),
])
def test_think_block_at_the_start_is_reasoning_wherever_split(content, expected):
    for pieces in every_split(content):
        assert run(pieces) == expected, pieces


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<>/thinkab \n", max_size=30), st.text(alphabet="<>/thinkab \n",
                                                              max_size=30),
       st.lists(st.integers(min_value=0, max_value=80), max_size=6))
def test_splitting_never_changes_the_result(reasoning, answer, cuts):
    content = f"<think>{reasoning.replace('</think>', '')}</think>{answer}"
    bounds = sorted({min(c, len(content)) for c in cuts})
    pieces = [content[a:b] for a, b in zip([0, *bounds], [*bounds, len(content)])]
    assert run(pieces) == run([content])


def test_text_after_the_block_is_passed_on_as_it_comes():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>x") == [Reasoning("x")]
    assert splitter.feed("</think>") == []
    assert splitter.feed("\n\n") == []  # layout between the block and the answer
    assert splitter.feed("A") == [Text("A")]
    assert splitter.feed("\nB") == [Text("\nB")]


@pytest.mark.parametrize("raw, reason", [
    ("stop", "stop"), ("end_turn", "stop"), ("stop_sequence", "stop"),
    ("length", "length"), ("max_tokens", "length"), ("content_filter", "content_filter"),
    ("refusal", "content_filter"), ("tool_calls", "tool_calls"), ("tool_use", "tool_calls"),
    ("load", "load"),
])
def test_finish_reasons_are_normalised_and_keep_the_raw_word(raw, reason):
    assert finish(raw) == Finish(reason, raw)


def test_no_finish_reason_is_none():
    assert finish(None) is None and finish("") is None


def test_usage_keeps_only_reported_counts():
    assert usage(3, 4) == Usage(3, 4)
    assert usage(None, None) is None
    assert usage("3", True) is None  # not counts
    assert usage(None, 7).as_dict() == {"input_tokens": None, "output_tokens": 7}
    assert Usage(3, None).merged(Usage(None, 9)) == Usage(3, 9)


def g4f(name, **attrs):
    """A gpt4free 8.x response object, known by its class name only."""
    cls = type(name, (), {})
    obj = cls()
    obj.__dict__.update(attrs)
    return obj


@pytest.mark.parametrize("chunk, event", [
    ("hi", Text("hi")),
    ("", None),
    (g4f("Reasoning", token="thinking hard"), Reasoning("thinking hard")),
    (g4f("Reasoning", token=None, status="Thinking..."), None),  # progress, not text
    (g4f("Usage", prompt_tokens=5, completion_tokens=9), Usage(5, 9)),
    (g4f("Usage", input_tokens=2, output_tokens=3), Usage(2, 3)),
    (g4f("FinishReason", reason="length"), Finish("length", "length")),
    (g4f("ImageResponse", urls=["x"]), None),  # anything else is skipped, never a repr
    (Text("own"), Text("own")),
])
def test_foreign_chunks_become_events(chunk, event):
    assert from_foreign(chunk) == event
