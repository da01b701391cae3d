"""All settings, from environment variables (names are a public interface: see SPEC)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Role(StrEnum):
    ALL = "all"
    STREAM = "stream"
    JOBS = "jobs"


class FlagProviderName(StrEnum):
    FILE = "file"
    FLAGD = "flagd"
    KUBERNETES = "kubernetes"
    ENV = "env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    role: Role = Role.ALL
    triton_url: str = "127.0.0.1:8001"
    triton_timeout_s: float = Field(30.0, gt=0)
    data_dir: Path = Path("./data")
    log_level: str = "INFO"
    # Count blocking calls made on the event loop thread (tests and diagnosis; see loop_audit).
    loop_audit: bool = False

    # Streaming
    streaming_router: bool = True  # False: the WebSocket router is not mounted at all
    streaming_enabled: bool = True  # fallback when the flag provider has no answer
    stream_max_sessions: int = Field(64, ge=1)
    stream_max_inflight: int = Field(1, ge=1)
    stream_max_frame_size_mb: float = Field(5.0, gt=0)
    stream_drop_threshold: float = Field(0.10, ge=0, le=1)
    stream_slowdown_threshold: float = Field(0.30, ge=0, le=1)
    stream_idle_timeout_s: float = Field(30.0, gt=0)
    stream_max_session_s: float = Field(600.0, gt=0)
    stream_auth_token: str | None = None
    # Browser origins allowed to open a stream besides the server's own (comma-separated,
    # `scheme://host[:port]`, or `*` for any); upgrades without an Origin header always pass.
    stream_allowed_origins: Annotated[list[str], NoDecode] = []
    # End-to-end target for a live frame (arrival at the gateway to result), enforced by dropping
    # frames that could only be answered later and by capping batch sizes (0 = no budget).
    stream_latency_budget_ms: float = Field(80.0, ge=0)
    # Triton unreachable: frames answered dropped for this long before sessions close (1013).
    stream_unavailable_grace_s: float = Field(10.0, ge=0)
    # Frames Triton fails in a row (each answered with a per-frame error) before a session closes.
    stream_max_consecutive_failures: int = Field(5, ge=1)

    # Micro-batching towards Triton
    batch_max_size: int = Field(8, ge=1, le=16)
    batch_max_delay_ms: float = Field(5.0, ge=0)
    batch_max_inflight: int = Field(2, ge=1)

    # Flags
    flag_provider: FlagProviderName = FlagProviderName.FILE
    flagd_offline_flag_source_path: Path | None = None
    flagd_host: str = "localhost"
    flagd_port: int = 8013
    flag_configmap: str = "framegate-flags"
    flag_namespace: str = "default"

    # Jobs
    jobs_concurrency: int = Field(2, ge=1)
    jobs_max_attempts: int = Field(3, ge=1)  # runs cut short by a crash before a job fails
    jobs_poll_interval_s: float = Field(1.0, gt=0)  # idle workers re-check the queue
    jobs_retry_initial_s: float = Field(0.5, gt=0)  # backoff while inference is unavailable
    jobs_retry_max_s: float = Field(30.0, gt=0)
    video_max_upload_mb: float = Field(200.0, gt=0)
    video_chunk_frames: int = Field(16, ge=1, le=256)  # frames in flight and per stored batch

    @field_validator("stream_auth_token")
    @classmethod
    def _empty_token_means_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("stream_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return [origin for origin in (part.strip() for part in value.split(",")) if origin]

    @field_validator("stream_allowed_origins")
    @classmethod
    def _normalise_origins(cls, value: list[str]) -> list[str]:
        return [_normalise_origin(origin) for origin in value]

    @property
    def max_frame_bytes(self) -> int:
        return int(self.stream_max_frame_size_mb * 1024 * 1024)


def _normalise_origin(origin: str) -> str:
    """`HTTPS://Host:8443/` -> `https://host:8443`, the form browsers send in `Origin`."""
    origin = origin.strip().lower().rstrip("/")
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    return origin


@lru_cache
def get_settings() -> Settings:
    return Settings()
