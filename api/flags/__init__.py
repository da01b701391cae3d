"""The `video-streaming` feature flag (OpenFeature): providers, the gateway's service, files."""

from __future__ import annotations

from api.flags.context import FlagContext
from api.flags.keys import STREAMING_FLAG
from api.flags.providers import ProviderSpec, build_provider
from api.flags.service import FlagService, FlagState

__all__ = [
    "STREAMING_FLAG",
    "FlagContext",
    "FlagService",
    "FlagState",
    "ProviderSpec",
    "build_provider",
]
