"""Configuration, from environment variables (prefix RUNWARD_) with sane embedded defaults."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runward.core.contracts import Autonomy

AUTONOMY_WINDOWS: dict[Autonomy, timedelta] = {
    # A low-autonomy retrieval agent stabilises in days, a high-autonomy multi-step agent in weeks.
    Autonomy.LOW: timedelta(days=3),
    Autonomy.MEDIUM: timedelta(days=7),
    Autonomy.HIGH: timedelta(days=21),
}
AUTONOMY_ANNOTATION = "runward.io/autonomy"


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
    observation_window_s: int | None = Field(
        default=None, description="overrides the autonomy-tier window for every agent (tests, demos)"
    )
    drift_correlation_s: int = Field(
        default=3600, description="drift this soon after a Deployment change is expected drift"
    )
    story_gap_s: int = Field(default=1800, description="signals further apart than this start a new story")
    api_tokens: str = Field(
        default="",
        description="comma-separated name:token:role (role viewer or approver); empty reads tokens_file",
    )
    tokens_file: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    otlp_port: int = Field(default=4318, description="OTLP/HTTP receiver for GenAI/MCP traces")

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{(self.home / 'runward.db').resolve()}"

    def window_for(self, autonomy: Autonomy) -> timedelta:
        return observation_window(autonomy, self.observation_window_s)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
