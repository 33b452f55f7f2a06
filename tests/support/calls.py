"""Calling a provider in tests: the whole answer, or the ChatError it raises."""

import pytest

from ipychat import errors


async def answer_of(provider, base_url, messages, **kwargs) -> str:
    """The whole text of one call (``model`` may be among ``kwargs``)."""
    chunks = provider.create_async_generator(kwargs.pop("model", None), messages,
                                             base_url=base_url, **kwargs)
    return "".join([text async for text in chunks])


async def failure_of(provider, base_url, messages, **kwargs) -> errors.ChatError:
    """The ChatError one call raises (the test fails if it raises none)."""
    with pytest.raises(errors.ChatError) as caught:
        await answer_of(provider, base_url, messages, **kwargs)
    return caught.value


async def events_of(provider, base_url, messages, **kwargs):
    """(events, error) of one ``stream_events`` call; text pieces of one kind merged."""
    found, failure = [], None
    try:
        async for event in provider.stream_events(kwargs.pop("model", None), messages,
                                                  base_url=base_url, **kwargs):
            found.append(event)
    except errors.ChatError as err:
        failure = err
    return found, failure


def merged(events):
    """``[(kind, value), ...]`` with neighbouring text or reasoning pieces joined,
    so that where the network split a stream does not matter."""
    out = []
    for event in events:
        value = event.text if event.kind in ("text", "reasoning") else event
        if out and event.kind in ("text", "reasoning") and out[-1][0] == event.kind:
            out[-1] = (event.kind, out[-1][1] + value)
        else:
            out.append((event.kind, value))
    return out
