"""From what the user asked for (``--provider a,b``, options, demo mode) to a
stream of text: which provider classes, with which keyword arguments.

Demo routing lives here: the classic providers' services are offline, so in
demo mode (the default) they answer from the built-in emulator, and with no
provider configured and no API key, so does ``%%chat``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, List, Optional

from . import errors
from .events import Event
from .messages import Messages

CLASSIC = ("cromicle", "openassistant", "vitalentum", "lockchat")
#: (environment variable, provider) tried in order when no provider is named.
KEYED_DEFAULTS = (("OPENAI_API_KEY", "openai"), ("ANTHROPIC_API_KEY", "anthropic"))
#: Set by the user, it points ``openai`` at their own server: no emulator then.
OPENAI_URL_ENV = "OPENAI_BASE_URL"
ZERO_CONFIG_PROVIDER = "openai"
OA_TOKEN_ENV = "OPENASSISTANT_SESSION_TOKEN"
OA_COOKIE = "__Secure-next-auth.session-token"
EMULATOR_NOTE = ("*Answered by ipychat's built-in emulator (demo mode). To connect a real model, "
                 "set OPENAI_API_KEY or see `%chat providers`.*")


@dataclass
class Leg:
    """One provider of a target, with the keyword arguments it is called with."""

    name: str
    provider: type
    # Out of the repr: it holds cookies, keys and proxy URLs with passwords.
    kwargs: Dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return getattr(self.provider, "__name__", self.name)


@dataclass
class Target:
    legs: List[Leg]
    model: Optional[str] = None
    note: str = ""

    @property
    def label(self) -> str:
        return " → ".join(leg.label for leg in self.legs)

    @property
    def model_label(self) -> Optional[str]:
        """The model asked for: the one named, else the first provider's default."""
        return self.model or getattr(self.legs[0].provider, "model", None)

    def stream(self, messages: Messages, tools: Optional[list] = None) -> AsyncIterator[Event]:
        """The answer's events, from the one provider or the chain; ``tools``:
        the schemas of the tools offered (``ToolBox.schemas``)."""
        from .providers.adapt import stream_events
        from .providers.chain import ProviderChain

        offered = {"tools": tools} if tools else {}
        if len(self.legs) == 1:
            leg = self.legs[0]
            return stream_events(leg.provider, self.model, messages, **leg.kwargs, **offered)
        chain = ProviderChain([(leg.provider, leg.kwargs) for leg in self.legs])
        return chain.stream(self.model, messages, **offered)

    def check_tools(self) -> None:
        """A one-line error, before anything is sent, unless every provider can call tools."""
        from .providers.adapt import is_own
        from .providers.base import TOOLS_HINT

        for leg in self.legs:
            if not (is_own(leg.provider) and leg.provider.takes_tools):
                raise errors.UsageError(f"{leg.name} cannot call tools", hint=TOOLS_HINT)


def resolve(spec: Optional[str], *, model: Optional[str] = None, options: Optional[dict] = None,
            base_url: Optional[str] = None, proxy: Optional[str] = None,
            timeout: Optional[float] = None, demo: bool = True) -> Target:
    """Build the ``Target`` for a ``--provider`` value (None: the zero-config choice)."""
    from .providers import get_provider

    names = [n.strip() for n in (spec or "").split(",") if n.strip()] or [default_name(demo)]
    if base_url and len(names) > 1:
        raise errors.UsageError("--base-url applies to one provider, not a fallback chain")
    legs, routed = [], False
    for name in names:
        common = {"proxy": proxy, "timeout": timeout, **(options or {})}
        leg = Leg(name.lower(), get_provider(name), {k: v for k, v in common.items() if v is not None})
        routed |= _route(leg, base_url, demo)
        legs.append(leg)
    return Target(legs, model=model, note=EMULATOR_NOTE if routed else "")


def secret_variables(*named: Optional[str]) -> List[str]:
    """Environment variables whose values must never go into a prompt: the keys
    and cookies ipychat reads, and any the user named (``--api-key-env``)."""
    own = [env for env, _ in KEYED_DEFAULTS] + [OA_TOKEN_ENV]
    return own + [name for name in named if name and name not in own]


def default_name(demo: bool) -> str:
    for env, name in (*KEYED_DEFAULTS, (OPENAI_URL_ENV, "openai")):
        if os.environ.get(env):
            return name
    if demo:
        return ZERO_CONFIG_PROVIDER
    raise errors.UsageError(
        "no provider configured",
        hint="Use --provider NAME, %chat use NAME, set OPENAI_API_KEY, or %chat demo on.",
    )


def _route(leg: Leg, base_url: Optional[str], demo: bool) -> bool:
    """Point ``leg`` at its server; True when that is the emulator."""
    if base_url:
        leg.kwargs["base_url"] = base_url
        _add_oa_cookies(leg)
        return False
    if routes_to_emulator(leg.name, demo):
        from .emulator import DEMO_COOKIES, base_url_for, shared_emulator

        leg.kwargs["base_url"] = base_url_for(leg.name, shared_emulator())
        if leg.name == "openassistant":
            leg.kwargs["cookies"] = dict(DEMO_COOKIES)
        return True
    _add_oa_cookies(leg)
    return False


def routes_to_emulator(name: str, demo: bool) -> bool:
    """Whether provider ``name`` answers from the emulator when no base URL is given."""
    name = name.strip().lower()
    zero_config = (name == ZERO_CONFIG_PROVIDER and not os.environ.get("OPENAI_API_KEY")
                   and not os.environ.get(OPENAI_URL_ENV))
    return demo and (name in CLASSIC or zero_config)


def _add_oa_cookies(leg: Leg) -> None:
    token = os.environ.get(OA_TOKEN_ENV)
    if leg.name == "openassistant" and token and "cookies" not in leg.kwargs:
        leg.kwargs["cookies"] = {OA_COOKIE: token}
