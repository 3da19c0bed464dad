"""Promotion decisions and policy proofs signed by the API, checked by the enforcer (HMAC-SHA256).

Only the enforcer decides promotions, on decisions the API made: anyone who can write to
`runward.promotions` could otherwise put an agent into enforce (or out of it) with a made-up
approver. The API signs the canonical record (sorted-key compact JSON of every field but the
signature) with a key shared with the enforcer: `RUNWARD_PROMOTION_KEY`, else the file
`RUNWARD_PROMOTION_KEY_FILE`, else `promotion.key` under `RUNWARD_HOME` (written by `runward up`).

A policy proof (`runward prove`) is signed the same way with the same key: an enforce-mode bundle
is only emitted for a proven profile, so a made-up "passed" proof would be a way into enforce
with a profile nobody ran.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any, TypeVar

from runward.core.config import Settings
from runward.core.contracts import PolicyProof, PromotionDecision

KEY_FILE_NAME = "promotion.key"
MIN_KEY_CHARS = 32


class PromotionKeyError(ValueError):
    """The configured promotion key cannot be used."""


def key_file(config: Settings) -> Path:
    return config.promotion_key_file or config.home / KEY_FILE_NAME


def promotion_key(config: Settings) -> bytes | None:
    """The shared key, or None when none is configured (then nothing may be signed or accepted)."""
    if config.promotion_key is not None:
        text, where = config.promotion_key.get_secret_value(), "RUNWARD_PROMOTION_KEY"
    else:
        path = key_file(config)
        if not path.is_file():
            return None
        text, where = path.read_text().strip(), str(path)
    if len(text) < MIN_KEY_CHARS:
        raise PromotionKeyError(
            f"the promotion key in {where} has {len(text)} characters; use at least {MIN_KEY_CHARS} "
            "random ones (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return text.encode()


def ensure_key_file(config: Settings) -> Path | None:
    """Write a random key file (mode 0600) when no key is configured; the path, or None if set in the env."""
    if config.promotion_key is not None:
        return None
    path = key_file(config)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path


Signed = TypeVar("Signed", PromotionDecision, PolicyProof)


def canonical_json(document: Any) -> bytes:
    """Sorted-key compact JSON: the one byte form that is signed or hashed."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical(record: Signed) -> bytes:
    body = record.model_dump(mode="json", exclude={"signature"})
    if isinstance(record, PromotionDecision) and body.get("accept_apd_revision") is None:
        body.pop("accept_apd_revision", None)  # decisions signed before the field existed still verify
    return canonical_json(body)


def profile_sha256(profile: dict[str, Any]) -> str:
    """The hash a proof names its seccomp profile by; the enforcer compares it with what it would emit."""
    return hashlib.sha256(canonical_json(profile)).hexdigest()


def sign(record: Signed, key: bytes) -> Signed:
    mac = hmac.new(key, canonical(record), hashlib.sha256).hexdigest()
    return record.model_copy(update={"signature": f"hmac-sha256:{mac}"})


def signature_problem(record: Signed, key: bytes | None) -> str | None:
    """Why the record (decision or proof) is not the API's (None when its signature is good)."""
    what = "decision" if isinstance(record, PromotionDecision) else "proof"
    if key is None:
        return "no promotion key is configured (RUNWARD_PROMOTION_KEY or RUNWARD_HOME/promotion.key)"
    if not record.signature:
        return f"the {what} is not signed by the API"
    expected = sign(record, key).signature
    assert expected is not None
    if not hmac.compare_digest(record.signature.encode(), expected.encode()):
        return f"the {what}'s signature does not match (not signed by the API with this key, or altered)"
    return None
