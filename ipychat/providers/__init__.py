"""Chat providers: g4f-style base classes, the classic four, and the registry."""

from .base import AbstractProvider, AsyncGeneratorProvider, HTTPProvider
from .cromicle import Cromicle
from .lockchat import Lockchat
from .openassistant import OpenAssistant
from .registry import (
    ProviderInfo,
    get_provider,
    list_providers,
    register_provider,
    unregister_provider,
)
from .vitalentum import Vitalentum

__all__ = [
    "AbstractProvider",
    "AsyncGeneratorProvider",
    "HTTPProvider",
    "Cromicle",
    "Lockchat",
    "OpenAssistant",
    "Vitalentum",
    "ProviderInfo",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]
