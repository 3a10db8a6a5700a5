"""Who may call the catalog API: bearer tokens with a scope, or loopback clients only.

With tokens configured (CAIRN_API_TOKENS), every catalog route needs `Authorization: Bearer
<token>`: a `read` token for reads, an `admin` token for the routes that change the catalog
(registering and deleting locations, refreshing). A missing or unknown token is a 401, a
read token on an admin route a 403, both in Backstage's error shape. Without tokens the
API is open, but only to clients on the loopback interface.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import Request

from search_api.backstage_errors import AuthenticationError, NotAllowedError

Scope = Literal["read", "admin"]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host == "testclient":  # Starlette's in-process test client
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TokenAuth:
    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = [(token.encode(), scope) for token, scope in tokens.items()]

    @property
    def open(self) -> bool:
        return not self._tokens

    def scope_of(self, token: str) -> str | None:
        given = token.encode()
        found = None
        for known, scope in self._tokens:  # compare with every token, in constant time
            if hmac.compare_digest(known, given):
                found = scope
        return found

    def check(self, request: Request, needed: Scope) -> None:
        if self.open:
            host = request.client.host if request.client else None
            if not is_loopback(host):
                raise NotAllowedError(
                    "The catalog API answers loopback clients only while no CAIRN_API_TOKENS "
                    "are configured; set tokens to serve other hosts."
                )
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "Missing credentials: send an Authorization: Bearer <token> header."
            )
        scope = self.scope_of(token.strip())
        if scope is None:
            raise AuthenticationError("Invalid token: it is not one of CAIRN_API_TOKENS.")
        if needed == "admin" and scope != "admin":
            raise NotAllowedError(
                "This token may only read; registering, deleting and refreshing need an "
                "admin token."
            )

    def dependency(self, needed: Scope) -> Callable[[Request], Awaitable[None]]:
        # A coroutine, though it never awaits: FastAPI runs a plain function dependency on
        # its thread pool, one more thread hop for every request; this check needs none.
        async def require(request: Request) -> None:
            self.check(request, needed)

        return require
