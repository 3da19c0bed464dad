"""Bearer-token authentication for the API: viewers read, approvers also promote.

The token configuration itself (roles, parsing, the registry) is `runward.core.auth`, shared
with the intake edges. With no API tokens configured the API refuses every request: it is never
open by default. Sender tokens only post telemetry to the intake; the API refuses them (403).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runward.core.auth import (
    ApiToken,
    Role,
    TokenConfigError,
    TokenRegistry,
    load_tokens,
    parse_token_file,
    parse_token_list,
)

__all__ = [
    "ApiToken",
    "Principal",
    "Role",
    "TokenConfigError",
    "TokenRegistry",
    "authenticate",
    "load_tokens",
    "parse_token_file",
    "parse_token_list",
    "require_approver",
]

log = logging.getLogger(__name__)

NO_TOKENS_CONFIGURED = (
    "no API tokens are configured, so the API refuses every request: set "
    "RUNWARD_API_TOKENS='name:token:role,...' (role viewer or approver) or RUNWARD_TOKENS_FILE "
    'to a JSON file [{"name": ..., "token": ..., "role": "viewer|approver"}], then restart the API'
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, its role, and the person decisions are signed by."""

    name: str
    role: Role
    identity: str = ""

    @property
    def signer(self) -> str:
        return self.identity or self.name


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An API token from RUNWARD_API_TOKENS or RUNWARD_TOKENS_FILE: `Authorization: Bearer <token>`.",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    registry: TokenRegistry = request.app.state.tokens
    if not registry:
        raise _unauthorized(NO_TOKENS_CONFIGURED)
    if credentials is None:
        raise _unauthorized("missing bearer token: send the header 'Authorization: Bearer <token>'")
    token = registry.identify(credentials.credentials)
    if token is None:
        client = request.client.host if request.client else "unknown client"
        log.warning("rejected an unknown bearer token from %s for %s %s", client, request.method, request.url.path)
        raise _unauthorized("the bearer token is not valid: it matches no configured API token")
    if token.role is Role.SENDER:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"token '{token.name}' has the sender role: it may only post telemetry to the intake, "
            "not read the API; use a viewer or approver token",
        )
    return Principal(name=token.name, role=token.role, identity=token.identity)


def require_approver(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.role is not Role.APPROVER:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this action needs the approver role; token '{principal.name}' has the {principal.role.value} role",
        )
    return principal
