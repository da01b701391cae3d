"""`env` flag provider: `video-streaming` from the STREAMING_ENABLED environment variable.

Our own provider, because the published env-var provider treats any non-empty string, "false"
included, as True. The variable is read at every evaluation, so a change to `os.environ` is seen
at once (tests rely on it; a real process only sees its own environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import FlagNotFoundError, ParseError, TypeMismatchError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from api.flags.flagfile import OFF_VARIANT, ON_VARIANT
from api.flags.keys import STREAMING_ENV_VAR, STREAMING_FLAG

# The words pydantic accepts for a bool, so the provider and Settings.streaming_enabled agree.
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"not a boolean: {text!r} (expected one of true/false, 1/0, on/off, yes/no)")


class EnvFlagProvider(AbstractProvider):
    """Serves one boolean flag from one environment variable; unset means the caller's default."""

    def __init__(self, variable: str = STREAMING_ENV_VAR, flag_key: str = STREAMING_FLAG) -> None:
        super().__init__()
        self._variable = variable
        self._flag_key = flag_key

    def get_metadata(self) -> Metadata:
        return Metadata(name="framegate-env")

    def revision(self) -> str | None:
        return os.environ.get(self._variable)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        self._check_key(flag_key)
        raw = os.environ.get(self._variable)
        if raw is None:
            return FlagResolutionDetails(value=default_value, reason=Reason.DEFAULT)
        try:
            value = parse_bool(raw)
        except ValueError as exc:
            raise ParseError(f"{self._variable}: {exc}") from exc
        variant = ON_VARIANT if value else OFF_VARIANT
        return FlagResolutionDetails(value=value, variant=variant, reason=Reason.STATIC)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._not_boolean(flag_key)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._not_boolean(flag_key)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._not_boolean(flag_key)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._not_boolean(flag_key)

    def _check_key(self, flag_key: str) -> None:
        if flag_key != self._flag_key:
            raise FlagNotFoundError(f"flag {flag_key!r} not served by {self._variable}")

    def _not_boolean(self, flag_key: str) -> FlagResolutionDetails:
        self._check_key(flag_key)
        raise TypeMismatchError(f"{self._flag_key} is a boolean flag")
