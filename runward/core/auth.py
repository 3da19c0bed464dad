"""Token configuration shared by every authenticated surface: the API and the intake edges.

Tokens come from configuration only (`RUNWARD_API_TOKENS` or `RUNWARD_TOKENS_FILE`, entries
`name:token:role`). Roles: viewers read the API, approvers also promote, senders may only post
telemetry to the intake endpoints. A tokens-file entry may name the person holding it
(`person`, `email`): decisions (promotions, waivers) are then signed by that person, not by a
shared token name. Token values never appear in responses, logs or exception
messages, not even when configuration is wrong.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runward.core.config import Settings


class Role(StrEnum):
    VIEWER = "viewer"
    APPROVER = "approver"
    SENDER = "sender"


ROLE_NAMES = ", ".join(r.value for r in Role)


class TokenConfigError(ValueError):
    """Token configuration is unusable; the message says where, never what the token is."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: Role
    secret: bytes = field(repr=False)
    person: str | None = None
    email: str | None = None

    @property
    def identity(self) -> str:
        """Who signs a decision made with this token: the person when named, else the token's name."""
        if self.person and self.email:
            return f"{self.person} <{self.email}>"
        return self.person or self.email or self.name


class TokenRegistry:
    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        secrets = [t.secret for t in tokens]
        if len(set(secrets)) != len(secrets):
            raise TokenConfigError("two API token entries share the same token value; give each its own")
        self._tokens = tuple(tokens)

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def with_role(self, *roles: Role) -> TokenRegistry:
        """The subset holding these roles (e.g. the intake's senders)."""
        return TokenRegistry([t for t in self._tokens if t.role in roles])

    def identify(self, presented: str) -> ApiToken | None:
        try:
            # HTTP headers reach us decoded as latin-1; this restores the bytes the client sent.
            candidate = presented.encode("latin-1")
        except UnicodeEncodeError:
            return None
        match = None
        # No early exit: the time taken must not reveal which entry (if any) matched.
        for token in self._tokens:
            if hmac.compare_digest(candidate, token.secret):
                match = token
        return match


def _optional_text(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TokenConfigError(f"{where}: '{key}' must be a non-empty string when given")
    if key == "email" and "@" not in value:
        raise TokenConfigError(f"{where}: 'email' is not an email address")
    return value.strip()


def _token(name: Any, secret: Any, role: Any, where: str) -> ApiToken:
    if not isinstance(name, str) or not name.strip():
        raise TokenConfigError(f"{where}: the name is empty")
    if not isinstance(secret, str) or not secret.strip():
        raise TokenConfigError(f"{where} ({name}): the token is empty")
    try:
        parsed_role = Role(role)
    except ValueError:
        raise TokenConfigError(f"{where} ({name}): role must be one of {ROLE_NAMES}") from None
    return ApiToken(name=name.strip(), role=parsed_role, secret=secret.strip().encode())


def parse_token_list(spec: str) -> list[ApiToken]:
    """Parse `name:token:role,...`; the token itself may not contain ':' or ','."""
    tokens = []
    for index, entry in enumerate((e for e in spec.split(",") if e.strip()), start=1):
        parts = entry.strip().split(":")
        if len(parts) != 3:
            raise TokenConfigError(f"RUNWARD_API_TOKENS entry {index} is not name:token:role")
        name, secret, role = parts
        tokens.append(_token(name, secret, role, where=f"RUNWARD_API_TOKENS entry {index}"))
    return tokens


def parse_token_file(text: str, source: str) -> list[ApiToken]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Position only: the JSON error message would quote the document, tokens included.
        raise TokenConfigError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, list):
        raise TokenConfigError(f"{source} must hold a JSON list of {{name, token, role}} objects")
    tokens = []
    for index, item in enumerate(data, start=1):
        where = f"{source} entry {index}"
        if not isinstance(item, dict):
            raise TokenConfigError(f"{where} is not an object with name, token and role")
        token = _token(item.get("name"), item.get("token"), item.get("role"), where=where)
        person, email = _optional_text(item, "person", where), _optional_text(item, "email", where)
        tokens.append(ApiToken(name=token.name, role=token.role, secret=token.secret, person=person, email=email))
    return tokens


def load_tokens(settings: Settings) -> TokenRegistry:
    """Tokens from `api_tokens`, or from `tokens_file` when `api_tokens` is empty."""
    if settings.api_tokens.strip():
        return TokenRegistry(parse_token_list(settings.api_tokens))
    if settings.tokens_file is not None:
        try:
            text = settings.tokens_file.read_text()
        except OSError as exc:
            raise TokenConfigError(f"cannot read RUNWARD_TOKENS_FILE {settings.tokens_file}: {exc.strerror}") from None
        return TokenRegistry(parse_token_file(text, str(settings.tokens_file)))
    return TokenRegistry([])
