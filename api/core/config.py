"""All settings, from environment variables (names are a public interface: see SPEC).

Values are checked when the process starts, each alone (ranges) and against each other (e.g. the
drop threshold under the slow-down threshold): `load_settings` turns a bad environment into one
line naming the variables and exit status `EX_CONFIG`, never a traceback nor a broken session.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.pipelines_spec import PIPELINES

EX_CONFIG = 78  # sysexits.h: configuration error
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_FIELDS = frozenset({"stream_auth_token"})  # never echoed in an error line
ONE_BYTE_MB = 1 / (1024 * 1024)


class Role(StrEnum):
    ALL = "all"
    STREAM = "stream"
    JOBS = "jobs"


class FlagProviderName(StrEnum):
    FILE = "file"
    FLAGD = "flagd"
    KUBERNETES = "kubernetes"
    ENV = "env"


MAX_TRITON_TIMEOUT_S = 3600.0


class Settings(BaseSettings):
    # No inf/nan anywhere: STREAM_MAX_FRAME_SIZE_MB=inf passed every range check and then failed
    # each session computing its byte limit (OverflowError).
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", allow_inf_nan=False
    )

    role: Role = Role.ALL
    triton_url: str = "127.0.0.1:8001"
    # At most an hour: gRPC fails a call whose deadline lies too far ahead (1e10 s) at once with
    # DEADLINE_EXCEEDED, so every frame would have been "unavailable" (tests/inference).
    triton_timeout_s: float = Field(30.0, gt=0, le=MAX_TRITON_TIMEOUT_S)
    data_dir: Path = Path("./data")
    log_level: str = "INFO"
    # Count blocking calls made on the event loop thread (tests and diagnosis; see loop_audit).
    loop_audit: bool = False
    # SIGTERM to exit: unready at once, frames at Triton answered, sessions closed (1012), running
    # jobs requeued, all within this (the chart derives terminationGracePeriodSeconds from it).
    shutdown_timeout_s: float = Field(10.0, gt=0)

    # Streaming
    streaming_router: bool = True  # False: the WebSocket router is not mounted at all
    streaming_enabled: bool = True  # fallback when the flag provider has no answer
    stream_max_sessions: int = Field(64, ge=1)
    stream_max_inflight: int = Field(1, ge=1)
    # Bounds keep the byte counts derived from these at least 1 and finite (1e-153 MB was 0
    # bytes, refusing everything; 1e308 MB overflowed).
    stream_max_frame_size_mb: float = Field(5.0, ge=ONE_BYTE_MB, le=1024)
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
    batch_max_size: int = Field(8, ge=1)  # at most every pipeline's max_batch_size
    batch_max_delay_ms: float = Field(5.0, ge=0)
    batch_max_inflight: int = Field(2, ge=1)
    # With a latency budget: share of the round trip before the end of the oldest batch at which
    # one more may go, so a freed model instance finds work queued (0 = never beyond max_inflight).
    batch_handover: float = Field(0.2, ge=0, lt=1)

    # Flags
    flag_provider: FlagProviderName = FlagProviderName.FILE
    flagd_offline_flag_source_path: Path | None = None
    flagd_host: str = "localhost"
    flagd_port: int = Field(8013, ge=1, le=65535)
    flag_configmap: str = "framegate-flags"
    flag_namespace: str = "default"

    # Jobs
    jobs_concurrency: int = Field(2, ge=1)
    jobs_max_attempts: int = Field(3, ge=1)  # runs cut short by a crash before a job fails
    jobs_poll_interval_s: float = Field(1.0, gt=0)  # idle workers re-check the queue
    jobs_retry_initial_s: float = Field(0.5, gt=0)  # backoff while inference is unavailable
    jobs_retry_max_s: float = Field(30.0, gt=0)
    video_max_upload_mb: float = Field(200.0, ge=ONE_BYTE_MB, le=1024 * 1024)
    video_chunk_frames: int = Field(16, ge=1, le=256)  # frames in flight and per stored batch

    @field_validator("triton_url")
    @classmethod
    def _triton_url_parses(cls, value: str) -> str:
        # Imported here: the parser lives with the replica set, which pulls in the gRPC client.
        from api.inference.replicas import parse_url

        parse_url(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"not a log level (one of {', '.join(LOG_LEVELS)})")
        return value.upper()

    @field_validator("batch_max_size")
    @classmethod
    def _batch_fits_every_pipeline(cls, value: int) -> int:
        # The gateway would cap each batch at the pipeline's limit anyway; a setting that can
        # never take effect is reported instead of silently lowered.
        if any(value > p.max_batch_size for p in PIPELINES.values()):
            limits = ", ".join(f"{p.id} {p.max_batch_size}" for p in PIPELINES.values())
            raise ValueError(f"must be <= every pipeline's max_batch_size ({limits})")
        return value

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

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if problems := self.contradictions():
            raise ValueError("; ".join(problems))
        return self

    def contradictions(self) -> list[str]:
        """Settings valid alone but not together, one line each naming the variables."""
        problems = []
        if self.stream_drop_threshold > self.stream_slowdown_threshold:
            # warning above the drop threshold, critical (slow_down) above the other: reversed,
            # a session would skip the warning state and the tracker refuses the pair.
            problems.append(
                f"STREAM_DROP_THRESHOLD ({self.stream_drop_threshold:g}) must be <= "
                f"STREAM_SLOWDOWN_THRESHOLD ({self.stream_slowdown_threshold:g})"
            )
        budget_s = self.live_latency_budget_s
        if budget_s is not None and self.batch_max_delay_ms >= self.stream_latency_budget_ms:
            problems.append(
                f"BATCH_MAX_DELAY_MS ({self.batch_max_delay_ms:g}) must be < "
                f"STREAM_LATENCY_BUDGET_MS ({self.stream_latency_budget_ms:g}) unless the budget "
                "is 0 (off): a frame waiting for its batch would already be late"
            )
        if budget_s is not None and budget_s > self.triton_timeout_s:
            problems.append(
                f"STREAM_LATENCY_BUDGET_MS ({self.stream_latency_budget_ms:g}) must be <= "
                f"TRITON_TIMEOUT_S ({self.triton_timeout_s:g} s): a Triton call is abandoned "
                "before the budget runs out"
            )
        if self.jobs_retry_initial_s > self.jobs_retry_max_s:
            problems.append(
                f"JOBS_RETRY_INITIAL_S ({self.jobs_retry_initial_s:g}) must be <= "
                f"JOBS_RETRY_MAX_S ({self.jobs_retry_max_s:g})"
            )
        return problems

    @property
    def live_latency_budget_s(self) -> float | None:
        """The budget live frames are held to, None where none applies: 0 turns it off, and a
        process that does not stream (ROLE=jobs, or the router not mounted) keeps video jobs at
        full batch throughput instead."""
        if self.role == Role.JOBS or not self.streaming_router:
            return None
        return self.stream_latency_budget_ms / 1000 or None

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


def explain(error: ValidationError) -> str:
    """One line for all the problems, each naming its environment variable."""
    problems = []
    for item in error.errors():
        message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        if not item["loc"]:  # a cross-field check: its message names the variables
            problems.append(message)
            continue
        field = str(item["loc"][0])
        shown = "" if field in SECRET_FIELDS else f"={item['input']}"
        problems.append(f"{field.upper()}{shown}: {message}")
    return " ".join("; ".join(problems).split())  # one line, whatever the values held


def load_settings(**overrides: Any) -> Settings:
    """The settings of a process (environment, then `overrides`): invalid ones end it with one
    line on stderr and exit status EX_CONFIG, before anything has started."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        print(f"framegate: invalid settings: {explain(exc)}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
