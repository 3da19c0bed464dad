"""Configuration, from environment variables (prefix RUNWARD_) with sane embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

AUTONOMY_WINDOWS_S: dict[str, int] = {
    # A low-autonomy retrieval agent stabilises in days, a high-autonomy multi-step agent in weeks.
    "low": 3 * 86400,
    "medium": 7 * 86400,
    "high": 21 * 86400,
}
AUTONOMY_ANNOTATION = "runward.io/autonomy"


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

    def window_for(self, autonomy: str) -> int:
        if self.observation_window_s is not None:
            return self.observation_window_s
        return AUTONOMY_WINDOWS_S.get(autonomy, AUTONOMY_WINDOWS_S["high"])


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
