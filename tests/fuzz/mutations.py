"""Seeded mutations of what a stream client sends, and what the protocol answers each one with.

Everything is drawn from one `random.Random(seed)`, so a failure names its seed and reproduces.
The oracle (`Message.expected`) is SPEC's framing rule written out independently of the product:
text → invalid_message; empty → invalid_frame; over the frame limit → frame_too_large; no FF D8
start or FF D9 end → invalid_frame; otherwise the frame is valid and gets exactly one reply (what
is inside the JPEG is Triton's business: a per-frame result or a per-frame error result).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
REPLY = "reply"  # Message.expected() of a valid frame
# Start-of-frame markers (they carry the image size); DHT (C4), JPG (C8) and DAC (CC) do not.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Per-frame error codes a frame that reached Triton may get (api/vision/jpeg.py): the session
# goes on. `pipeline_failure` is not among them: a frame that crashes the pipeline is a bug.
FRAME_ERRORS = frozenset({"corrupt_jpeg", "image_too_small", "image_too_large"})


@dataclass(frozen=True)
class Message:
    kind: str  # the mutation that made it
    payload: bytes | str
    # A valid frame's per-frame result when the mutation fixes it: an error code, or "ok" (a
    # detection/text result). None: whatever the decoder makes of it (a result or a frame error).
    result: str | None = None

    def expected(self, max_frame_bytes: int, max_message_bytes: int) -> str:
        """REPLY, or the error code the session closes with ("message_too_big": the transport
        refuses the message before reading it, close 1009 with no error message)."""
        data = self.payload
        if isinstance(data, str):
            return "invalid_message"
        if not data:
            return "invalid_frame"
        if len(data) > max_message_bytes:
            return "message_too_big"
        if len(data) > max_frame_bytes:
            return "frame_too_large"
        if not data.startswith(SOI) or not data.endswith(EOI):
            return "invalid_frame"
        return REPLY

    def __repr__(self) -> str:
        size = len(self.payload)
        head = self.payload[:24]
        return f"Message({self.kind}, {size} {'chars' if isinstance(head, str) else 'bytes'})"


def segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each marker segment from SOI up to and including SOS."""
    found, i = [], 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker = jpeg[i + 1]
        found.append((i, marker))
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    return found


def sof_offset(jpeg: bytes) -> int:
    return next(i for i, marker in segments(jpeg) if marker in SOF_MARKERS)


def scan_start(jpeg: bytes) -> int:
    """Offset of the entropy-coded data (just after the SOS segment)."""
    i = next(i for i, marker in segments(jpeg) if marker == 0xDA)
    return i + 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")


def with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with a different size declared in its frame header."""
    i = sof_offset(jpeg)
    return jpeg[: i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[i + 9 :]


class Mutator:
    """Messages for one fuzz run; `valid()` draws one that passes framing, `rejected()` one that
    ends the session, `any()` either (bit flips may land on a marker and do either)."""

    def __init__(
        self, seed: int, jpegs: Sequence[bytes], max_frame_bytes: int, max_message_bytes: int
    ) -> None:
        self.rng = random.Random(seed)
        self.jpegs = list(jpegs)
        self.max_frame_bytes = max_frame_bytes
        self.max_message_bytes = max_message_bytes
        self._decoding: list[Callable[[], Message]] = [
            self.original, self.bit_flips, self.truncated_with_end, self.garbage_scan,
        ]  # fmt: skip
        self._not_decoding: list[Callable[[], Message]] = [
            self.original, self.huge_size, self.tiny_size, self.garbage_between_markers,
        ]  # fmt: skip
        self._rejected: list[Callable[[], Message]] = [
            self.truncated, self.bit_flips, self.empty, self.zero_bytes, self.random_bytes,
            self.no_start_marker, self.oversized, self.text_json, self.text_garbage,
        ]  # fmt: skip

    def expected(self, message: Message) -> str:
        return message.expected(self.max_frame_bytes, self.max_message_bytes)

    def valid(self, decoding: bool = True) -> Message:
        """A frame that passes framing. `decoding=False`: only mutants that Triton answers
        before decoding pixels (for the slow OCR pipeline)."""
        makers = self._decoding + self._not_decoding if decoding else self._not_decoding
        return self._draw(makers, lambda m: self.expected(m) == REPLY)

    def rejected(self) -> Message:
        return self._draw(self._rejected, lambda m: self.expected(m) != REPLY)

    def _draw(
        self, makers: list[Callable[[], Message]], keep: Callable[[Message], bool]
    ) -> Message:
        while True:
            message = self.rng.choice(makers)()
            if keep(message):
                return message

    def _jpeg(self) -> bytes:
        return self.rng.choice(self.jpegs)

    def _bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    # Frames that pass framing

    def original(self) -> Message:
        return Message("original", self._jpeg(), "ok")

    def bit_flips(self) -> Message:
        data = bytearray(self._jpeg())
        for _ in range(self.rng.randint(1, 24)):
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        return Message("bit_flips", bytes(data))

    def truncated_with_end(self) -> Message:
        data = self._jpeg()
        return Message("truncated_with_end", data[: self.rng.randrange(4, len(data))] + EOI)

    def garbage_scan(self) -> Message:
        """A valid header, random entropy-coded data."""
        data = self._jpeg()
        body = self._bytes(self.rng.randrange(0, 4000))
        return Message("garbage_scan", data[: scan_start(data)] + body + EOI)

    def huge_size(self) -> Message:
        width, height = self.rng.randint(4097, 65535), self.rng.randint(1, 65535)
        if self.rng.random() < 0.5:
            width, height = height, width
        if min(width, height) < 16:  # too small is checked too: make it only too large
            width, height = max(width, 16), max(height, 16)
        return Message("huge_size", with_size(self._jpeg(), width, height), "image_too_large")

    def tiny_size(self) -> Message:
        width, height = self.rng.randint(0, 15), self.rng.randint(0, 4096)
        if self.rng.random() < 0.5:
            width, height = height, width
        return Message("tiny_size", with_size(self._jpeg(), width, height), "image_too_small")

    def garbage_between_markers(self) -> Message:
        """FF D8, random bytes without a frame header, FF D9."""
        body = self._bytes(self.rng.randrange(0, 3000)).replace(b"\xff", b"\x00")
        return Message("garbage_between_markers", SOI + body + EOI, "corrupt_jpeg")

    # Messages that end the session

    def truncated(self) -> Message:
        data = self._jpeg()
        return Message("truncated", data[: self.rng.randrange(1, len(data) - 1)])

    def empty(self) -> Message:
        return Message("empty", b"")

    def zero_bytes(self) -> Message:
        return Message("zero_bytes", bytes(self.rng.randrange(1, 5000)))

    def random_bytes(self) -> Message:
        data = self._bytes(self.rng.randrange(1, 5000))
        if self.rng.random() < 0.3:  # framed like a JPEG, or nearly
            data = self.rng.choice([SOI + data, data + EOI, SOI + data + EOI])
        return Message("random_bytes", data)

    def no_start_marker(self) -> Message:
        return Message("no_start_marker", self._jpeg()[self.rng.randrange(1, 8) :])

    def oversized(self) -> Message:
        """Over the frame limit, under the transport's: framed like a JPEG or not."""
        size = self.rng.randrange(self.max_frame_bytes + 1, 2 * self.max_frame_bytes)
        data = SOI + bytes(size) + EOI if self.rng.random() < 0.5 else self._bytes(size)
        return Message("oversized", data)

    def too_big_for_the_transport(self) -> Message:
        return Message("too_big_for_the_transport", SOI + bytes(self.max_message_bytes) + EOI)

    def text_json(self) -> Message:
        return Message("text_json", json.dumps(self._json(3)))

    def text_garbage(self) -> Message:
        alphabet = string.printable + "\x00\x7f éß€🙂\u202e\ufeff"
        length = self.rng.randrange(0, 300)
        return Message("text_garbage", "".join(self.rng.choice(alphabet) for _ in range(length)))

    def _json(self, depth: int) -> object:
        """Random JSON, often shaped like a control message a client might try."""
        kind = self.rng.randrange(7 if depth else 4)
        if kind == 0:
            return self.rng.choice([None, True, False])
        if kind == 1:
            return self.rng.choice([self.rng.randint(-(2**70), 2**70), self.rng.random() * 1e6])
        if kind == 2:
            return self.rng.choice(["start", "stop", "ping", "", "ü" * 40, "frame_index"])
        if kind == 3:
            return {"type": self.rng.choice(["start", "stop", "config", "ack"])}
        if kind in (4, 5):
            keys = ["type", "frame_index", "pipeline_id", "fps", "token", "error", "x" * 50]
            return {
                self.rng.choice(keys): self._json(depth - 1) for _ in range(self.rng.randrange(5))
            }
        return [self._json(depth - 1) for _ in range(self.rng.randrange(5))]

    def pipeline_id(self) -> str:
        """A pipeline_id the server does not know (ASCII or not, empty, long)."""
        alphabet = string.ascii_letters + string.digits + "_-./ %&=?#éü€🙂"
        return self.rng.choice(
            [
                "",
                "yolo ",
                "YOLO",
                "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(1, 80))),
                "ü" * self.rng.randrange(40, 200),
            ]
        )
