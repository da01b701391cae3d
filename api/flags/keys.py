"""Names shared by the flag modules, the CLI and the Helm chart."""

from __future__ import annotations

STREAMING_FLAG = "video-streaming"
FLAG_SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
CONFIGMAP_KEY = "flags.json"
STREAMING_ENV_VAR = "STREAMING_ENABLED"
