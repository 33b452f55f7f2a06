"""Chat providers: g4f-style base classes, the classic four, and the registry."""

from .adapt import stream_events
from .anthropic import Anthropic
from .base import AbstractProvider, AsyncGeneratorProvider, HTTPProvider
from .chain import ProviderChain
from .cromicle import Cromicle
from .lockchat import Lockchat
from .ollama import Ollama
from .openai import OpenAIChat
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
    "OpenAIChat",
    "Ollama",
    "Anthropic",
    "ProviderChain",
    "stream_events",
    "ProviderInfo",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]
