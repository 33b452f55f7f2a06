"""From what the user asked for (``--provider a,b``, options, demo mode) to a
stream of text: which provider classes, with which keyword arguments.

Demo routing lives here: the classic providers' services are offline, so in
demo mode (the default) they answer from the built-in emulator, and with no
provider configured and no API key, so does ``%%chat``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from typing import AsyncIterator, Dict, List, Optional

from . import errors
from .answer import Answer
from .events import Event
from .messages import Messages, without_image_bytes

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
#: Where a demo-routed leg goes, as answers and the log say it: the emulator's
#: port changes with every kernel, what it answers does not.
EMULATOR_WHERE = "built-in emulator"


@dataclass
class Leg:
    """One provider of a target, with the keyword arguments it is called with."""

    name: str
    provider: type
    # Out of the repr: it holds cookies, keys and proxy URLs with passwords.
    kwargs: Dict[str, object] = field(default_factory=dict, repr=False)
    #: Sent to the built-in emulator by demo mode.
    demo: bool = False

    @property
    def label(self) -> str:
        return getattr(self.provider, "__name__", self.name)

    @property
    def where(self) -> Optional[str]:
        """The server this leg asks, credentials hidden."""
        if self.demo:
            return EMULATOR_WHERE
        url = self.kwargs.get("base_url") or getattr(self.provider, "default_base_url", None) \
            or getattr(self.provider, "url", None)
        return errors.hide_credentials(str(url)) if url else None

    def secrets(self) -> List[str]:
        """Keys, cookies and the proxy password this leg may send."""
        found = [str(self.kwargs.get("api_key") or "")]
        env = self.kwargs.get("api_key_env")
        found.append(os.environ.get(str(env), "") if env else "")
        found += [str(value) for value in dict(self.kwargs.get("cookies") or {}).values()]
        proxy = urlsplit(str(self.kwargs.get("proxy") or ""))
        found.append(proxy.password or "")
        return [secret for secret in found if secret]


@dataclass
class Target:
    legs: List[Leg]
    model: Optional[str] = None
    note: str = ""
    #: What reaches the request body besides the messages (temperature, limits, ...).
    options: Dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return " → ".join(leg.label for leg in self.legs)

    @property
    def model_label(self) -> Optional[str]:
        """The model asked for: the one named, else the first provider's default."""
        return self.model or getattr(self.legs[0].provider, "model", None)

    def answer(self, prompt: str, messages: Messages, conversation: Optional[str] = None,
               tools: Optional[list] = None) -> Answer:
        """The ``Answer`` this target is about to give: who, and what is sent
        (``tools``: the schemas of the tools offered)."""
        where = [leg.where for leg in self.legs]
        return Answer(prompt, self.label, self.model_label,
                      messages=without_image_bytes(messages),
                      options=dict(self.options), conversation=conversation,
                      base_url=" → ".join(w or "?" for w in where) if any(where) else None,
                      tools=list(tools or ()))

    def secrets(self) -> List[str]:
        return [secret for leg in self.legs for secret in leg.secrets()]

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
    from .providers.base import CONTROL_ARGS

    names = [n.strip() for n in (spec or "").split(",") if n.strip()] or [default_name(demo)]
    if base_url and len(names) > 1:
        raise errors.UsageError("--base-url applies to one provider, not a fallback chain")
    legs, routed = [], False
    for name in names:
        common = {"proxy": proxy, "timeout": timeout, **(options or {})}
        leg = Leg(name.lower(), get_provider(name), {k: v for k, v in common.items() if v is not None})
        leg.demo = _route(leg, base_url, demo)
        routed |= leg.demo
        legs.append(leg)
    body = {k: v for k, v in (options or {}).items() if k not in CONTROL_ARGS and v is not None}
    return Target(legs, model=model, note=EMULATOR_NOTE if routed else "", options=body)


async def list_models(name: str, *, base_url: Optional[str] = None, demo: bool = True,
                      timeout: Optional[float] = None) -> Optional[List[str]]:
    """The models the server of provider ``name`` offers, where it answers
    (the emulator in demo mode, like ``resolve``); None when its protocol
    has no model list."""
    from .providers import get_provider

    provider = get_provider(name)
    lister = getattr(provider, "list_models", None)
    if lister is None:
        return None
    leg = Leg(name.strip().lower(), provider)
    _route(leg, base_url, demo)
    return await lister(base_url=leg.kwargs.get("base_url"), timeout=timeout)


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
