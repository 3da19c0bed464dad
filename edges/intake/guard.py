"""Who may post to the intake, and how much: sender tokens, per-sender budgets, bounded bodies.

Every intake endpoint takes `Authorization: Bearer <token>` with a token of role `sender` from
the same configuration the API reads (`RUNWARD_API_TOKENS` / `RUNWARD_TOKENS_FILE`), or runs
behind mutual TLS where the handshake itself proves the sender. With neither, everything is
refused: the intake is never open by default. Each sender has its own request and byte budget
(token buckets), so one noisy or hostile sender cannot starve the others.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from runward.core.auth import Role, TokenRegistry

log = logging.getLogger(__name__)

NO_SENDERS = (
    "no sender tokens are configured, so the intake refuses every request: add an entry with role "
    "sender to RUNWARD_API_TOKENS ('name:token:sender') or RUNWARD_TOKENS_FILE, or run the receiver "
    "with mutual TLS (--tls-cert, --tls-key, --client-ca), then restart it"
)


class IntakeRefused(Exception):
    """A request the intake will not take; `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class _Bucket:
    rate: float
    capacity: float
    level: float
    stamp: float

    def take(self, amount: float, now: float) -> float:
        """Take `amount`; return 0 when granted, else the seconds until it would be."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= min(amount, self.capacity):
            self.level -= amount  # may go negative: a large body is paid back before the next one
            return 0.0
        return (min(amount, self.capacity) - self.level) / self.rate


@dataclass
class SenderGuard:
    senders: TokenRegistry
    mtls: bool = False
    requests_per_s: float = 50.0
    request_burst: int = 200
    bytes_per_s: float = 32 * 1024 * 1024
    byte_burst: int = 128 * 1024 * 1024
    clock: Callable[[], float] = time.monotonic
    _requests: dict[str, _Bucket] = field(default_factory=dict)
    _bytes: dict[str, _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.senders = self.senders.with_role(Role.SENDER)

    def authenticate(self, authorization: str | None, client: str) -> str:
        """The sender's name, or IntakeRefused(401). The token is never echoed or logged."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and presented.strip():
            token = self.senders.identify(presented.strip()) if self.senders else None
            if token is not None:
                return token.name
            log.warning("intake: rejected an unknown bearer token from %s", client)
            raise IntakeRefused(401, "the bearer token is not valid: it matches no configured sender token", _CHALLENGE)
        if self.mtls:
            return f"mtls:{client}"  # the TLS handshake verified a client certificate
        if not self.senders:
            raise IntakeRefused(401, NO_SENDERS, _CHALLENGE)
        raise IntakeRefused(
            401, "missing bearer token: send 'Authorization: Bearer <token>' with a sender token", _CHALLENGE
        )

    def admit(self, sender: str, declared_bytes: int = 0) -> None:
        """Charge one request (and its declared size) to the sender; IntakeRefused(429) if over budget."""
        now = self.clock()
        wait = self._bucket(self._requests, sender, self.requests_per_s, self.request_burst, now).take(1, now)
        if not wait and declared_bytes:
            wait = self._bucket(self._bytes, sender, self.bytes_per_s, self.byte_burst, now).take(declared_bytes, now)
        if wait:
            raise IntakeRefused(
                429,
                f"sender {sender!r} is over its rate limit; retry after the Retry-After seconds",
                {"Retry-After": str(max(1, int(wait + 0.999)))},
            )

    def charge_bytes(self, sender: str, received: int) -> None:
        """Charge bytes that were not declared up front (chunked bodies) once they are read."""
        now = self.clock()
        self._bucket(self._bytes, sender, self.bytes_per_s, self.byte_burst, now).take(received, now)

    @staticmethod
    def _bucket(table: dict[str, _Bucket], sender: str, rate: float, capacity: float, now: float) -> _Bucket:
        bucket = table.get(sender)
        if bucket is None:
            bucket = table[sender] = _Bucket(rate, capacity, capacity, now)
        return bucket


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def read_bounded(chunks: AsyncIterator[bytes], encoding: str, limit: int) -> bytes:
    """Read a body chunk by chunk (chunked transfer included), decompressing as it comes, and
    stop with IntakeRefused(413) as soon as either the wire bytes or the decoded bytes pass
    `limit`: a body is never held whole before its size is known."""
    decompressor: Any = None
    if encoding == "gzip":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    elif encoding not in {"identity", ""}:
        raise IntakeRefused(415, f"unsupported content-encoding {encoding!r}; use gzip or none")
    out, wire = bytearray(), 0
    async for chunk in chunks:
        wire += len(chunk)
        if wire > limit:
            raise IntakeRefused(413, f"body larger than {limit} bytes; export smaller batches")
        if decompressor is None:
            out += chunk
            continue
        try:
            out += decompressor.decompress(chunk, limit + 1 - len(out))
        except zlib.error as exc:
            raise IntakeRefused(400, f"body is not valid {encoding}: {exc}") from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise IntakeRefused(413, f"decompressed body larger than {limit} bytes; export smaller batches")
    return bytes(out)
