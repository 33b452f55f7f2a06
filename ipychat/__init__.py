"""ipychat: stream chat answers into Jupyter notebooks.

``%load_ext ipychat`` registers the ``%%chat`` magic. Importing this package
is cheap: aiohttp and ipywidgets are imported only when first needed.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ChatError
from .messages import format_prompt

_LAZY = {
    "ChatPanel": ("ipychat.panel", "ChatPanel"),
    "Conversation": ("ipychat.session", "Conversation"),
    "get_provider": ("ipychat.providers", "get_provider"),
    "last_result": ("ipychat.answer", "last_result"),
    "list_providers": ("ipychat.providers", "list_providers"),
    "start_emulator": ("ipychat.emulator", "start_emulator"),
    "tool": ("ipychat.tools", "tool"),
}


#: Submodules reachable as attributes without importing them first (``ipychat.log.entries``).
_SUBMODULES = ("log",)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"ipychat.{name}")
    raise AttributeError(f"module 'ipychat' has no attribute {name!r}")


def load_ipython_extension(ipython):
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython):
    from .magics import unload

    unload(ipython)


__all__ = ["ChatError", "format_prompt", "load_ipython_extension", "unload_ipython_extension",
           *_LAZY]
