"""The local DIGITS-style web UI (``digits-gan serve``); see app.create_app."""
from .app import create_app

__all__ = ["create_app"]
