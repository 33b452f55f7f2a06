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
