"""perf_analyzer `--input-data` JSON of real synthetic JPEGs for the pipeline models.

The pipeline models take `frames` (TYPE_STRING, dims [1], batched): one JPEG per batch element.

The form perf_analyzer 2.41 accepts for binary BYTES content, and what it does with it:

    {"data": [{"frames": {"content": {"b64": B64}, "shape": [1]}}, ...]}

    B64 = base64(uint32_le(len(jpeg)) + jpeg)

perf_analyzer base64-decodes the string and puts the bytes on the wire *verbatim* (gRPC
`raw_input_contents`, or the HTTP binary-data extension). Unlike a `"content": ["text"]` array,
which it serializes itself, it does NOT add Triton's 4-byte length prefix to b64 data, and the
server parses BYTES raw contents as the serialized string tensor (each element prefixed by its
length as uint32 little-endian). So the b64 payload must be that serialized string tensor, for
one batch-1 element, not the raw JPEG bytes; for `-b 8` perf_analyzer concatenates 8 steps'
payloads, which is again a valid serialized tensor of 8 elements.

Verified empirically with perf_analyzer 2.41.1 against the embedded tritonserver 2.51
(docs/BENCHMARKS.md, "Which b64 form"): with the prefixed form `pipeline_yolo` spends about 13 ms
per frame in "Server: compute infer" on 2 idle cores (decode, letterbox, yolo, NMS: real work),
and the same bytes sent as gRPC raw_input_contents yield real detections
(tests/loadtest/test_perf_input.py); with the raw JPEG bytes every request fails ("expecting
string of length 3774863615"): the server reads the JPEG's first four bytes (FF D8 FF E0) as an
element length.

A JSON string can't carry arbitrary bytes (non-UTF-8 JPEG data), so `"content": [...]` strings
are no option for images; b64 is. Each step's "shape": [1] is the per-element shape, so no
`--shape` flag is needed.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from pathlib import Path

from api.synthetic.scene import encode_jpeg, make_frames

INPUT = "frames"


def sample_jpegs(seed: int = 1000, count: int = 64) -> list[bytes]:
    """The benchmark frames: deterministic synthetic plate scenes (640x360), JPEG quality 90."""
    return [encode_jpeg(frame.image) for frame in make_frames(seed, count)]


def serialize_element(data: bytes) -> bytes:
    """One element of Triton's serialized BYTES tensor: uint32 little-endian length + bytes."""
    return struct.pack("<I", len(data)) + data


def perf_input_document(jpegs: Sequence[bytes], input_name: str = INPUT) -> dict:
    """One data step per JPEG; perf_analyzer cycles through the steps, one per batch element."""
    if not jpegs:
        raise ValueError("perf_analyzer input data needs at least one frame")
    return {
        "data": [
            {
                input_name: {
                    "content": {"b64": base64.b64encode(serialize_element(j)).decode("ascii")},
                    "shape": [1],
                }
            }
            for j in jpegs
        ]
    }


def decode_step(step: dict, input_name: str = INPUT) -> bytes:
    """The wire bytes perf_analyzer sends for one step (a one-element serialized tensor)."""
    return base64.b64decode(step[input_name]["content"]["b64"], validate=True)


def decode_perf_input(document: dict, input_name: str = INPUT) -> list[bytes]:
    """The JPEGs back out of a document, checking that each step is exactly one element."""
    jpegs = []
    for index, step in enumerate(document["data"]):
        wire = decode_step(step, input_name)
        if len(wire) < 4:
            raise ValueError(f"step {index}: {len(wire)} bytes, shorter than a length prefix")
        (length,) = struct.unpack_from("<I", wire)
        if length != len(wire) - 4:
            raise ValueError(
                f"step {index}: length prefix says {length} bytes, payload has {len(wire) - 4}"
            )
        jpegs.append(wire[4:])
    return jpegs


def write_perf_input(out: Path, seed: int = 1000, frames: int = 64) -> list[bytes]:
    """Write the JSON file; returns the JPEGs it holds."""
    jpegs = sample_jpegs(seed, frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(perf_input_document(jpegs)))
    return jpegs
