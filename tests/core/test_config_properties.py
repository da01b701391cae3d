"""Settings (api/core/config.py) under any environment: every value of every variable either
loads or is refused with a pydantic ValidationError whose one-line description names the
variable; never another exception, and never settings that load and then fail where they are
used. Properties only: the rules themselves are tests/core/test_config.py's."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.core.config import EX_CONFIG, Settings, load_settings
from api.streaming.protocol import max_message_bytes
from tests.fuzz import fuzz_settings

VARIABLES = sorted(name.upper() for name in Settings.model_fields)

# What an environment variable can hold: no NUL, no lone surrogates (os.environ refuses both).
env_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
env_value = st.one_of(
    env_text,
    st.sampled_from(["", " ", "0", "-1", "1", "true", "false", "nan", "inf", "-inf", "1e309"]),
    st.sampled_from(["1e300", "00", "0x10", "1_000", "2.5", ",", "*", "dns:///t:1", "a:1,b:2"]),
    st.integers().map(str),
    st.floats().map(str),
)
environments = st.dictionaries(st.sampled_from(VARIABLES), env_value, min_size=1, max_size=4)
NUMBERS = sorted(
    name.upper() for name, f in Settings.model_fields.items() if f.annotation in (int, float)
)
numbers = st.one_of(st.floats().map(str), st.integers().map(str), st.sampled_from(["1e309"]))


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Exactly `values` for the settings' variables (whatever the test process had)."""
    cleared = {name: "" for name in VARIABLES if name in os.environ}
    with mock.patch.dict(os.environ, cleared):
        for name in cleared:
            del os.environ[name]
        os.environ.update(values)
        yield


def load(values: dict[str, str]) -> Settings | ValidationError:
    with environment(values):
        try:
            return Settings()
        except ValidationError as exc:
            return exc


def startup_line(values: dict[str, str]) -> str | None:
    """What a process started with `values` says on stderr before exiting EX_CONFIG (None: it
    started)."""
    stderr = io.StringIO()
    with environment(values), contextlib.redirect_stderr(stderr):
        try:
            load_settings()
        except SystemExit as exc:
            assert exc.code == EX_CONFIG
            (line,) = stderr.getvalue().splitlines()
            assert line.startswith(PREFIX)
            return line.removeprefix(PREFIX)
    assert stderr.getvalue() == ""
    return None


PREFIX = "framegate: invalid settings: "


def use(loaded: Settings) -> None:
    """What the process derives from its settings at startup, per session and per upload."""
    assert loaded.max_frame_bytes >= 1
    assert max_message_bytes(loaded.max_frame_bytes) > loaded.max_frame_bytes
    assert int(loaded.video_max_upload_mb * 1024 * 1024) >= 1
    assert loaded.contradictions() == []
    budget = loaded.live_latency_budget_s
    assert budget is None or budget > 0


@fuzz_settings(300)
@given(environments)
def test_any_environment_loads_or_names_each_bad_variable(values: dict[str, str]) -> None:
    outcome = load(values)
    line = startup_line(values)
    if isinstance(outcome, Settings):
        assert line is None
        use(outcome)
        return
    assert line, "refused settings without saying why"
    fields = {str(e["loc"][0]).upper() for e in outcome.errors() if e["loc"]}
    assert fields <= set(values), f"{line!r} blames a variable that was not set"
    for field in fields:
        assert field in line
    if not fields:  # only cross-field problems: they name the variables involved
        assert any(name in line for name in values), line


@fuzz_settings(200)
@given(st.dictionaries(st.sampled_from(NUMBERS), numbers, min_size=1, max_size=3))
def test_any_number_loads_into_usable_settings_or_is_refused(values: dict[str, str]) -> None:
    outcome = load(values)
    if isinstance(outcome, Settings):
        use(outcome)
    else:
        assert startup_line(values)


@fuzz_settings(100)
@given(values=environments, secret=env_text.filter(lambda t: len(t.strip()) >= 4))
def test_the_stream_token_is_never_echoed(values: dict[str, str], secret: str) -> None:
    token = f"tok-{secret}"
    assume(not any(token in value for value in values.values()))
    line = startup_line({**values, "STREAM_AUTH_TOKEN": token, "STREAM_MAX_SESSIONS": "many"})
    assert line is not None and "STREAM_MAX_SESSIONS=many: " in line
    assert token not in line and "tok-" not in line.replace("STREAM_MAX_SESSIONS=many", "")


@pytest.mark.parametrize("value", ["1e308", "1e-153"])
@pytest.mark.parametrize("variable", ["STREAM_MAX_FRAME_SIZE_MB", "VIDEO_MAX_UPLOAD_MB"])
def test_size_not_countable_in_bytes_refused_by_name(variable: str, value: str) -> None:
    """Regression (found by the properties above): VIDEO_MAX_UPLOAD_MB=1e308 loaded, and every
    upload then failed computing its byte limit (OverflowError: a 500); 1e-153 loaded as a limit
    of 0 bytes, which refuses every frame and upload."""
    line = startup_line({variable: value})
    assert line is not None and line.startswith(f"{variable}={value}: ")


def test_one_byte_limit_loads() -> None:
    assert Settings(stream_max_frame_size_mb=1 / (1024 * 1024)).max_frame_bytes == 1


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize(
    "variable",
    [
        "STREAM_MAX_FRAME_SIZE_MB",
        "VIDEO_MAX_UPLOAD_MB",
        "TRITON_TIMEOUT_S",
        "STREAM_IDLE_TIMEOUT_S",
    ],
)
def test_non_finite_number_refused_by_name(variable: str, value: str) -> None:
    """Regression (found by the property above): STREAM_MAX_FRAME_SIZE_MB=inf loaded, and every
    session then failed computing the frame limit (OverflowError: 1011 internal_error)."""
    assert isinstance(load({variable: value}), ValidationError)
    line = startup_line({variable: value})
    assert line is not None and line.startswith(f"{variable}={value}: ")
