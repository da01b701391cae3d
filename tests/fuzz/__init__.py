"""Fuzzing as tests: seeded mutations of the stream's inputs (mutations.py) and hypothesis
settings shared by the property tests (tests/*/test_*_properties.py, tests/fuzz/)."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings

# CI replays the same examples every run (a failure there reproduces locally with CI=true);
# elsewhere each run explores new ones. No example database in the checkout, and no per-example
# deadline: a busy 2-core CI machine is no reason for a property to fail.
DERANDOMIZE = bool(os.environ.get("CI"))


def fuzz_settings(max_examples: int, **overrides: Any) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        **overrides,
    )
