"""The read-only web page served by `tallyroom web`: ``create_web_app(settings)``."""

from tallyroom.consumers.web.app import create_web_app

__all__ = ["create_web_app"]
