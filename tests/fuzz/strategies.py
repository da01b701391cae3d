"""Hypothesis strategies for the fuzz properties: frames (random bytes, framed random bytes,
mutated real JPEGs), JSON values and error details."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from hypothesis import strategies as st

from tests.fuzz.mutations import EOI, SOI, with_size


@cache
def jpegs() -> tuple[bytes, ...]:
    """Small real JPEGs: baseline and progressive, colour and grey, odd sizes."""
    rng = np.random.default_rng(7)
    out = []
    for (w, h), progressive, grey in [
        ((64, 48), False, False), ((33, 17), True, False), ((16, 300), False, True),
        ((120, 90), True, True),
    ]:  # fmt: skip
        image = rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)
        params = [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
        ok, buf = cv2.imencode(".jpg", image, params)
        assert ok
        out.append(buf.tobytes())
    return tuple(out)


@st.composite
def mutated_jpegs(draw: st.DrawFn) -> bytes:
    """A real JPEG with bit flips, byte overwrites, a cut and/or garbage appended, or a rewritten
    declared size."""
    data = bytearray(draw(st.sampled_from(jpegs())))
    if draw(st.booleans()):
        width, height = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        data = bytearray(with_size(bytes(data), width, height))
    for position, value in draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)))):
        data[min(int(position * len(data)), len(data) - 1)] = value
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    data += draw(st.binary(max_size=64))
    if draw(st.booleans()):
        data += EOI
    return bytes(data)


# Error details: short text, and long non-ASCII text (a detail quoting what a client sent).
details = st.one_of(
    st.text(),
    st.text(st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=64),
)
frames = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda body: SOI + body + EOI, st.binary(max_size=512)),
    mutated_jpegs(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)  # fmt: skip
