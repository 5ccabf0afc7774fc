"""The HTTP ceiling: a bare Flask app under exactly the API's gunicorn options.

`python -m bench.bare_app` with the bench's settings in the environment. Its POST
handler parses the JSON body and answers as the API does, and nothing else: no
validation, no broker. The request rate it reaches with the same wrk script and
connections is the most the real API could reach on this machine.
"""
from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request

from api.__main__ import GunicornApp
from common.config import Settings


def create_app() -> Flask:
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
    GunicornApp(Settings.from_env(), lambda _settings: create_app()).run()
