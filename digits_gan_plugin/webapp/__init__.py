"""The local DIGITS-style web UI (``digits-gan serve``); see app.create_app.

Flask is imported only by create_app, so the job store (store.py) serves the
command line (``digits-gan jobs``) without the web extra.
"""


def create_app(*args, **kwargs):
    from .app import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["create_app"]
