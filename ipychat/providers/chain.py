"""Fallback chains: try providers in order until one starts answering.

A provider that has already produced text or reasoning is never replaced
mid-answer (the user would see two half answers glued together): its later
failure is raised as is. When every provider fails before its first text, one
``AllProvidersFailed`` lists each failure.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, Iterable, List, Tuple

from .. import errors
from ..events import Event
from ..messages import check_messages
from .adapt import check_provider, label_of, stream_events
from .base import SHOWN


class ProviderChain:
    """``ProviderChain([(provider, kwargs), ...])``; ``kwargs`` may hold a ``model``
    for that provider alone (each provider names its models differently)."""

    def __init__(self, links: Iterable[Tuple[object, dict]]):
        self.links: List[Tuple[object, dict]] = []
        for link in links:
            provider, kwargs = link if isinstance(link, tuple) else (link, {})
            self.links.append((check_provider(provider), dict(kwargs or {})))
        if not self.links:
            raise errors.UsageError("a provider chain needs at least one provider")

    def __repr__(self) -> str:  # labels only: kwargs may hold keys and cookies
        return f"ProviderChain([{', '.join(self.labels)}])"

    @property
    def labels(self) -> List[str]:
        return [label_of(provider) for provider, _ in self.links]

    async def stream(self, model, messages, **kwargs) -> AsyncIterator[Event]:
        """Events of the first provider that answers; ``kwargs`` go to every provider."""
        check_messages(messages)  # bad input fails every provider alike: say so once
        failures = []
        for provider, own in self.links:
            options = {**kwargs, **own}
            events = stream_events(provider, options.pop("model", model), messages, **options)
            started = False
            async with contextlib.aclosing(events):
                try:
                    async for event in events:
                        started = started or event.kind in SHOWN
                        yield event
                    if not started:  # an empty answer is no answer: try the next one
                        raise errors.ChatError("answered with no text")
                except Exception as err:
                    if started:
                        raise
                    failures.append((label_of(provider), err))
                    continue
            return
        raise errors.AllProvidersFailed(failures)
