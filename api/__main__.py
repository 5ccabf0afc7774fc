"""`python -m api`: the API under gunicorn, with the settings of api/gunicorn_conf.py."""
from __future__ import annotations

import sys

from gunicorn.app import wsgiapp

CONFIG = "python:api.gunicorn_conf"


def main(app_uri: str = "api:create_app()") -> None:
    """gunicorn serving app_uri with our settings (the benchmark serves its bare app the same way).

    Extra command-line options go to gunicorn, before the app: `python -m api --workers 4`.
    """
    sys.argv = [sys.argv[0], "--config", CONFIG, *sys.argv[1:], app_uri]
    wsgiapp.run(prog="python -m api")


if __name__ == "__main__":
    main()
