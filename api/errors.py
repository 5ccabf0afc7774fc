"""Errors as JSON: one exception type carries status, code and problems; one place renders it.

Body of every error:
    {"error": {"code": "...", "message": "...", "problems": [{"at": "...", "problem": "..."}]}}
"""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from api import metrics
from api.validation import Invalid, Problem
from common.logging import fields

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, problems: list[Problem] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.headers = headers or {}

    @classmethod
    def invalid(cls, error: Invalid) -> "ApiError":
        return cls(400, "invalid_request", error.message, error.problems)

    @classmethod
    def unavailable(cls, dependency: str, why: str) -> "ApiError":
        return cls(503, f"{dependency}_unavailable", why, headers={"Retry-After": str(RETRY_AFTER_S)})


def _render(error: ApiError) -> Response:
    metrics.rejected_for(error.code)
    body: dict = {"code": error.code, "message": error.message}
    if error.problems:
        body["problems"] = [{"at": p.at, "problem": p.problem} for p in error.problems]
    response = jsonify(error=body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def on_api_error(error: ApiError) -> Response:
        if error.status >= 500:
            log.warning("request failed", extra=fields(status=error.status, code=error.code, reason=error.message))
        return _render(error)

    @app.errorhandler(Invalid)
    def on_invalid(error: Invalid) -> Response:
        return _render(ApiError.invalid(error))

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        # 404, 405, 413 and friends: the same JSON shape as our own errors.
        code = (error.name or "error").lower().replace(" ", "_")
        rendered = _render(ApiError(error.code or 500, code, error.description or error.name))
        for name, value in error.get_headers():
            if name.lower() == "allow":
                rendered.headers[name] = value
        return rendered

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        # Only our own bugs arrive here; say so without leaking internals.
        log.exception("unhandled error")
        return _render(ApiError(500, "internal_error", "an unexpected error occurred; it has been logged"))
