"""The HTTP ceiling: a bare Flask app under exactly the API's gunicorn settings.

`python -m bench.bare_app` with the bench's settings in the environment (API_WORKER_CLASS
picks the worker class, as for the API). Its POST handler parses the JSON body and
answers as the API does, and nothing else: no validation, no broker. The request rate
it reaches with the same wrk script and connections is the most the real API could
reach on this machine.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from api.__main__ import main

if TYPE_CHECKING:
    from flask import Flask


def create_app() -> "Flask":
    # Imported here, in the gunicorn worker: as for the API, the master imports no Flask.
    from flask import Flask, Response, jsonify, request

    app = Flask(__name__)

    @app.post("/page-views/single")
    def single() -> tuple[Response, int]:
        json.loads(request.get_data())
        return jsonify(accepted=1), 202

    @app.get("/health")
    def health() -> Response:
        # The wrk script's tail phase asks for /health, as it does of the real API.
        return jsonify(status="ok")

    return app


if __name__ == "__main__":
    main("bench.bare_app:create_app()")
