"""format_prompt as shared/PROTOCOLS.md states it, and message validation."""

import pytest

from ipychat.errors import ChatError, UsageError
from ipychat.messages import check_messages, folded, format_prompt, last_user_text


def msg(role, content):
    return {"role": role, "content": content}


@pytest.mark.parametrize(
    "messages, special, expected",
    [
        ([msg("user", "hi")], False, "hi"),
        ([msg("system", "be nice"), msg("user", "hi")], False,
         "System: be nice\nUser: hi\nAssistant:"),
        ([msg("user", "hi")], True, "User: hi\nAssistant:"),
        ([msg("system", "s"), msg("user", "u"), msg("assistant", "a"), msg("user", "again")],
         False, "System: s\nUser: u\nAssistant: a\nUser: again\nAssistant:"),
        # One message goes out byte for byte: no strip, newlines kept.
        ([msg("user", "  two\nlines \n")], False, "  two\nlines \n"),
        ([msg("assistant", "only")], False, "only"),
        ([msg("user", "")], False, ""),
        ([msg("user", "a"), msg("user", "")], False, "User: a\nUser: \nAssistant:"),
        # g4f used str.capitalize on the role.
        ([msg("USER", "x"), msg("tool", "y")], False, "User: x\nTool: y\nAssistant:"),
        ([msg("user", "é ☃ 🎉")], True, "User: é ☃ 🎉\nAssistant:"),
    ],
)
def test_format_prompt(messages, special, expected):
    assert format_prompt(messages, add_special_tokens=special) == expected


def test_format_prompt_accepts_any_iterable_and_keeps_input():
    messages = [msg("system", "s"), msg("user", "u")]
    snapshot = [dict(m) for m in messages]
    assert format_prompt(iter(messages)) == "System: s\nUser: u\nAssistant:"
    assert format_prompt(tuple(messages), True) == "System: s\nUser: u\nAssistant:"
    assert messages == snapshot


@pytest.mark.parametrize("special", [False, True])
def test_empty_list_is_a_usage_error_not_index_error(special):
    with pytest.raises(UsageError) as caught:
        format_prompt([], add_special_tokens=special)
    assert str(caught.value) == "no messages to send. Give at least one message."
    assert isinstance(caught.value, ChatError)


SHAPE = ("messages must be a list of {'role': ..., 'content': ...} dicts. "
         "For example [{'role': 'user', 'content': 'hi'}].")


@pytest.mark.parametrize(
    "bad, expected",
    [
        (None, SHAPE),
        ("hi", SHAPE),
        (b"hi", SHAPE),
        (42, SHAPE),
        (msg("user", "hi"), SHAPE),
        ([msg("user", "hi"), "oops"],
         "message 1 needs a 'role' and a 'content'. For example [{'role': 'user', 'content': 'hi'}]."),
        ([{"role": "user"}],
         "message 0 needs a 'role' and a 'content'. For example [{'role': 'user', 'content': 'hi'}]."),
        ([{"content": "hi"}],
         "message 0 needs a 'role' and a 'content'. For example [{'role': 'user', 'content': 'hi'}]."),
        ([msg(None, "hi")], "message 0 has role None. Use one of: system, user, assistant."),
        ([msg("", "hi")], "message 0 has role ''. Use one of: system, user, assistant."),
        ([msg("user", None)],
         "message 0 has a NoneType content, not text. Give the content as a string."),
        ([msg("user", "a"), msg("user", ["part"])],
         "message 1 has a list content, not text. Give the content as a string."),
    ],
)
def test_malformed_messages_raise_usage_error(bad, expected):
    for call in (check_messages, format_prompt):
        with pytest.raises(UsageError) as caught:
            call(bad)
        assert str(caught.value) == expected


def test_check_messages_returns_a_list_of_the_same_dicts():
    first, second = msg("user", "a"), msg("assistant", "b")
    checked = check_messages(m for m in (first, second))
    assert type(checked) is list
    assert checked == [first, second]
    assert checked[0] is first
    extra = {"role": "user", "content": "x", "name": "bob"}
    assert check_messages([extra]) == [extra]


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([msg("user", "a"), msg("assistant", "b"), msg("user", "c")], "c"),
        ([msg("user", "a"), msg("assistant", "b")], "a"),
        ([msg("system", "s"), msg("assistant", "b")], ""),
        ([], ""),
    ],
)
def test_last_user_text(messages, expected):
    assert last_user_text(messages) == expected


CALLED = {"role": "assistant", "content": "Let me look.",
          "tool_calls": [{"id": "c1", "name": "lookup", "arguments": '{"q": "x"}'}]}
RESULT = {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": "42",
          "is_error": False}


def test_tool_calls_and_results_are_messages_too():
    assert check_messages([msg("user", "q"), CALLED, RESULT]) == [msg("user", "q"), CALLED, RESULT]
    for bad in ([{"id": "c1", "name": "lookup"}], "lookup", [{"id": 1, "name": "f",
                                                             "arguments": "{}"}]):
        with pytest.raises(UsageError, match="tool_calls that are not a list"):
            check_messages([{**CALLED, "tool_calls": bad}])


def test_folded_writes_tool_use_as_text_of_one_assistant_message():
    failed = {**RESULT, "content": "KeyError: 'x'", "is_error": True}
    messages = [msg("user", "q"), CALLED, RESULT, failed, msg("assistant", "It is 42."),
                msg("user", "thanks")]
    assert folded(messages) == [
        msg("user", "q"),
        msg("assistant", 'Let me look.\n[called lookup({"q": "x"})]\n[lookup returned: 42]\n'
                         "[lookup raised: KeyError: 'x']\nIt is 42."),
        msg("user", "thanks")]
    plain = [msg("user", "q"), msg("assistant", "a")]
    assert folded(plain) is plain
