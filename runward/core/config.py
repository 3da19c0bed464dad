"""Configuration, from environment variables (prefix RUNWARD_) with sane embedded defaults."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runward.core.contracts import Autonomy

AUTONOMY_WINDOWS: dict[Autonomy, timedelta] = {
    # A low-autonomy retrieval agent stabilises in days, a high-autonomy multi-step agent in weeks.
    Autonomy.LOW: timedelta(days=3),
    Autonomy.MEDIUM: timedelta(days=7),
    Autonomy.HIGH: timedelta(days=21),
}
AUTONOMY_ANNOTATION = "runward.io/autonomy"

SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


def autonomy_of(annotation: str | None) -> Autonomy:
    """The tier an annotation value names; a missing or unknown value gets the longest window."""
    try:
        return Autonomy(annotation or Autonomy.HIGH)
    except ValueError:
        return Autonomy.HIGH


def observation_window(autonomy: Autonomy, override_s: int | None = None) -> timedelta:
    """How long an agent's APD learns before new behaviour becomes a signal (the one owner of this rule)."""
    return timedelta(seconds=override_s) if override_s is not None else AUTONOMY_WINDOWS[autonomy]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNWARD_", extra="ignore")

    kafka: str = Field(default="127.0.0.1:9092", description="bootstrap servers of the Kafka cluster")
    db: str | None = Field(default=None, description="SQLAlchemy URL; unset means the embedded SQLite file")
    home: Path = Field(default=Path(".runward"), description="state, logs and embedded database")
    partitions: int = Field(default=4, ge=1)
    kafka_replication: int = Field(default=1, ge=1, description="replication factor of the topics Runward creates")
    observation_window_s: int | None = Field(
        default=None, description="overrides the autonomy-tier window for every agent (tests, demos)"
    )
    drift_correlation_s: int = Field(
        default=3600, description="drift this soon after a Deployment change is expected drift"
    )
    max_clock_skew_s: int = Field(
        default=300,
        ge=0,
        description="event time further than this from ingest's receipt time is replaced by the receipt "
        "time and flagged clock_skew (a sender's clock is evidence, not authority)",
    )
    story_gap_s: int = Field(default=1800, description="signals further apart than this start a new story")
    cluster_name: str | None = Field(
        default=None,
        description="the cluster's name in attack stories (OCSF resources and unmapped): tells a SIEM that ingests "
        "several clusters which one a Deployment id belongs to",
    )
    audit_soak_s: int = Field(
        default=86400,
        ge=0,
        description="how long an agent must run clean in audit before it may be promoted to enforce",
    )
    api_tokens: str = Field(
        default="",
        description="comma-separated name:token:role (role viewer, approver or sender); empty reads tokens_file",
    )
    tokens_file: Path | None = None
    promotion_key: SecretStr | None = Field(
        default=None, description="key the API signs promotion decisions with and the enforcer checks"
    )
    promotion_key_file: Path | None = Field(
        default=None, description="file holding the promotion key; unset: promotion.key under home"
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    otlp_port: int = Field(default=4318, description="OTLP/HTTP receiver for GenAI/MCP traces")
    metrics_port: int = Field(default=0, ge=0, description="Prometheus /metrics of a stage on this port; 0 = off")
    metrics_host: str = Field(default="127.0.0.1", description="address of the metrics port (0.0.0.0 in a pod)")

    # Production Kafka: every client (confluent-kafka producers/consumers, the Faust stages, the
    # admin client creating topics) is configured from these, see runward.core.kafka.
    kafka_tls: bool = Field(default=False, description="connect to Kafka over TLS")
    kafka_tls_ca_file: Path | None = Field(default=None, description="PEM CA bundle; unset trusts the system CAs")
    kafka_tls_cert_file: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    kafka_tls_key_file: Path | None = Field(default=None, description="PEM private key of the client certificate")
    kafka_tls_key_password: SecretStr | None = None
    kafka_tls_check_hostname: bool = Field(default=True, description="verify the broker's name in its certificate")
    kafka_sasl_mechanism: SaslMechanism | None = Field(default=None, description="SASL mechanism; unset: no SASL")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_oauth_token_url: str | None = Field(
        default=None, description="OAUTHBEARER: the OIDC token endpoint (client-credentials grant)"
    )
    kafka_oauth_client_id: str | None = None
    kafka_oauth_client_secret: SecretStr | None = None
    kafka_oauth_scope: str | None = None

    @model_validator(mode="after")
    def _kafka_security_is_consistent(self) -> Settings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("inconsistent Kafka security settings: " + "; ".join(problems))
        return self

    @property
    def kafka_security_protocol(self) -> str:
        """The Kafka security.protocol these settings amount to."""
        sasl = self.kafka_sasl_mechanism is not None
        if self.kafka_tls:
            return "SASL_SSL" if sasl else "SSL"
        return "SASL_PLAINTEXT" if sasl else "PLAINTEXT"

    injection_allowlist: Path | None = Field(
        default=None,
        description="YAML of known benign phrasings per agent ({'*': [...], 'ns/deployment': [...]}) that "
        "the prompt-injection detector ignores; set by the platform team",
    )

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{(self.home / 'runward.db').resolve()}"

    def window_for(self, autonomy: Autonomy) -> timedelta:
        return observation_window(autonomy, self.observation_window_s)


def _env(name: str) -> str:
    return f"RUNWARD_{name.upper()}"


def kafka_security_problems(s: Settings) -> list[str]:
    """Every inconsistency of the Kafka TLS/SASL settings, each naming the setting to fix."""
    return [*_tls_problems(s), *_sasl_problems(s)]


def _tls_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    for name in ("kafka_tls_ca_file", "kafka_tls_cert_file", "kafka_tls_key_file"):
        path = getattr(s, name)
        if path is None:
            continue
        if not s.kafka_tls:
            problems.append(f"{_env(name)} is set but {_env('kafka_tls')} is off; set {_env('kafka_tls')}=true")
        elif not path.is_file():
            problems.append(f"{_env(name)}={path}: no such file")
    if (s.kafka_tls_cert_file is None) != (s.kafka_tls_key_file is None):
        problems.append(
            f"mutual TLS needs both {_env('kafka_tls_cert_file')} and {_env('kafka_tls_key_file')}, not one of them"
        )
    return problems


def _https_or_loopback(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "https" or (
        parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "::1", "localhost")
    )


def _sasl_problems(s: Settings) -> list[str]:
    mechanism = s.kafka_sasl_mechanism
    if mechanism is None:
        stray = ("kafka_sasl_username", "kafka_sasl_password", "kafka_oauth_token_url", "kafka_oauth_client_id")
        return [
            f"{_env(name)} is set but {_env('kafka_sasl_mechanism')} is not"
            for name in stray
            if getattr(s, name) is not None
        ]
    needed = (
        ("kafka_oauth_token_url", "kafka_oauth_client_id", "kafka_oauth_client_secret")
        if mechanism == "OAUTHBEARER"
        else ("kafka_sasl_username", "kafka_sasl_password")
    )
    problems = [
        f"{_env('kafka_sasl_mechanism')}={mechanism} needs {_env(name)}" for name in needed if not getattr(s, name)
    ]
    url = s.kafka_oauth_token_url
    if mechanism == "OAUTHBEARER" and url and not _https_or_loopback(url):
        # The client secret goes to this URL: never in clear across a network.
        problems.append(f"{_env('kafka_oauth_token_url')}={url} must be an https:// URL")
    if mechanism == "PLAIN" and not s.kafka_tls:
        # PLAIN sends the password as it is: only ever inside TLS.
        problems.append(
            f"{_env('kafka_sasl_mechanism')}=PLAIN sends the password in clear; set {_env('kafka_tls')}=true"
        )
    return problems


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
