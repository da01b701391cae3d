"""Who is asking: the evaluation context of one streaming handshake."""

from __future__ import annotations

from dataclasses import dataclass

from openfeature.evaluation_context import EvaluationContext


@dataclass(frozen=True, slots=True)
class FlagContext:
    """`targeting_key` is the client or session id: flagd's `fractional` buckets on it."""

    targeting_key: str
    pipeline_id: str | None = None
    tenant: str | None = None

    def to_evaluation_context(self) -> EvaluationContext:
        attributes = {
            name: value
            for name, value in (("pipeline_id", self.pipeline_id), ("tenant", self.tenant))
            if value is not None
        }
        return EvaluationContext(targeting_key=self.targeting_key, attributes=attributes)
