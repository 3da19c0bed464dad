"""Tokens-file entries may name the person holding the token: decisions are signed by them."""

from __future__ import annotations

import json

import pytest

from runward.core.auth import Role, TokenConfigError, parse_token_file


def entries(**extra: object) -> str:
    return json.dumps([{"name": "ada", "token": "t-approve-1", "role": "approver", **extra}])


def test_person_and_email_make_the_identity() -> None:
    [token] = parse_token_file(entries(person="Ada Platform", email="ada@example.com"), "tokens.json")
    assert token.role is Role.APPROVER and token.identity == "Ada Platform <ada@example.com>"
    [only_email] = parse_token_file(entries(email="ada@example.com"), "tokens.json")
    assert only_email.identity == "ada@example.com"
    [unnamed] = parse_token_file(entries(), "tokens.json")
    assert unnamed.identity == "ada"  # the token's name, as before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"person": ""}, "'person' must be a non-empty string"),
        ({"person": 7}, "'person' must be a non-empty string"),
        ({"email": "not-an-address"}, "'email' is not an email address"),
    ],
)
def test_bad_person_fields_are_refused_without_quoting_the_token(extra: dict[str, object], message: str) -> None:
    with pytest.raises(TokenConfigError, match=message) as raised:
        parse_token_file(entries(**extra), "tokens.json")
    assert "t-approve-1" not in str(raised.value) and "tokens.json entry 1" in str(raised.value)
