"""The HTTP API: `create_app()` is the factory gunicorn loads (`gunicorn 'api:create_app()'`).

This package imports nothing at module level. gunicorn's master imports it (for
`api.gunicorn_conf`) before it forks, and a gevent worker monkey-patches the standard
library only after the fork: Flask, SQLAlchemy and pika must first be imported in the
worker, after the patch, so that every lock, socket and thread they make is cooperative.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from common.config import Settings


def create_app(settings: "Settings | None" = None) -> "Flask":
    from api.app import create_app as build

    return build(settings)
