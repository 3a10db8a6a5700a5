"""Errors in Backstage's shape, so its clients (and `ResponseError`) understand Cairn's.

Backstage's error middleware answers `{"error": {"name", "message"}, "request": {"method",
"url"}, "response": {"statusCode"}}`; the error name decides the status the same way
(`InputError` 400, `AuthenticationError` 401, `NotAllowedError` 403, `NotFoundError` 404,
`ConflictError` 409).
"""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response


class CatalogApiError(Exception):
    name = "Error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(CatalogApiError):
    name = "InputError"
    status = 400


class AuthenticationError(CatalogApiError):
    name = "AuthenticationError"
    status = 401


class NotAllowedError(CatalogApiError):
    name = "NotAllowedError"
    status = 403


class NotFoundError(CatalogApiError):
    name = "NotFoundError"
    status = 404


class ConflictError(CatalogApiError):
    name = "ConflictError"
    status = 409


class ServiceUnavailableError(CatalogApiError):
    name = "ServiceUnavailableError"
    status = 503


def request_url(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def error_response(request: Request, status: int, name: str, message: str) -> Response:
    body = {
        "error": {"name": name, "message": message},
        "request": {"method": request.method, "url": request_url(request)},
        "response": {"statusCode": status},
    }
    return Response(
        content=json.dumps(body, ensure_ascii=False),
        status_code=status,
        media_type="application/json",
    )
