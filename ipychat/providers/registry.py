"""Finding providers by name: the ``ipychat.providers`` entry-point group
(through which the built-ins register too), runtime registrations, and
``package.module:ClassName`` dotted paths."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Dict, List, Optional

from .. import errors
from .adapt import check_provider

ENTRY_POINT_GROUP = "ipychat.providers"
_registered: Dict[str, type] = {}


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str
    model: Optional[str]
    base_url: Optional[str]
    working: bool
    needs_auth: bool
    supports_stream: bool
    supports_message_history: bool
    provider: type


def register_provider(name: str, cls: type) -> None:
    """Add (or replace) a provider under ``name`` for this process."""
    _registered[name.lower()] = cls


def unregister_provider(name: str) -> None:
    _registered.pop(name.lower(), None)


@functools.lru_cache(maxsize=1)
def _entry_points() -> Dict[str, object]:
    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> List[str]:
    return sorted(set(_entry_points()) | set(_registered))


def get_provider(name: str) -> type:
    """The provider class for ``name`` (case-insensitive) or a dotted path."""
    if not isinstance(name, str) or not name.strip():
        raise errors.UsageError("a provider name is needed", hint=_known_hint())
    key = name.strip().lower()
    if key in _registered:
        return _registered[key]
    if key in _entry_points():
        return _load(_entry_points()[key], name)
    if ":" in name:
        return load_dotted(name.strip())
    raise errors.ProviderNotFound(name, provider_names())


def _load(entry_point, name: str) -> type:
    try:
        return entry_point.load()
    except Exception as err:  # a broken third-party package must not break the rest
        raise errors.ChatError(f"provider {name!r} failed to load: {errors.one_line(err)}") from err


def load_dotted(path: str) -> type:
    """``package.module:ClassName`` -> that class."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        found = getattr(module, attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise errors.UsageError(f"cannot load provider {path!r}: {errors.one_line(err, 120)}",
                                hint="Use package.module:ClassName.") from None
    return check_provider(found, path)


def _known_hint() -> str:
    return f"Known providers: {', '.join(provider_names())}."


def provider_info(name: str, cls: type) -> ProviderInfo:
    return ProviderInfo(
        name=name,
        label=getattr(cls, "__name__", name),
        model=getattr(cls, "model", None),
        base_url=getattr(cls, "default_base_url", None) or getattr(cls, "url", None),
        working=bool(getattr(cls, "working", False)),
        needs_auth=bool(getattr(cls, "needs_auth", False)),
        supports_stream=bool(getattr(cls, "supports_stream", False)),
        supports_message_history=bool(getattr(cls, "supports_message_history", False)),
        provider=cls,
    )


def list_providers() -> List[ProviderInfo]:
    """Every known provider; one that fails to load is left out."""
    found = []
    for name in provider_names():
        try:
            found.append(provider_info(name, get_provider(name)))
        except errors.ChatError:
            continue
    return found
