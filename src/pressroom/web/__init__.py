"""The subscription service, the live preview and their commands.

``create_app`` and ``create_app_from_env`` (the WSGI entry point:
``gunicorn 'pressroom.web:create_app_from_env()'``) live in :mod:`pressroom.web.app` and are
imported on first use (PEP 562), so `pressroom --help` lists `serve` and `preview` without
loading Flask.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app", "create_app_from_env"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("pressroom.web.app"), name)
    raise AttributeError(f"module 'pressroom.web' has no attribute {name!r}")
