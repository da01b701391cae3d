"""Deterministic synthetic frames: licence-plate-like signs with random strings on varied
backgrounds, plus their ground truth (boxes in pixels and the strings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Glyphs that OCR and humans confuse (I/1, O/Q/0) are left out, as many real plate
# alphabets do, so "exact read" measures the pipeline rather than a coin flip.
PLATE_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ123456789"
PLATE_CLASS = "plate"
FRAME_WIDTH = 640
FRAME_HEIGHT = 360

_PLATE_COLOURS = [(255, 255, 255), (40, 210, 250), (235, 235, 235), (200, 230, 255)]
_INK = [(20, 20, 20), (40, 30, 20), (10, 10, 60)]


@dataclass(frozen=True)
class Sign:
    text: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    signs: list[Sign] = field(default_factory=list)


def random_plate_text(rng: np.random.Generator) -> str:
    length = int(rng.integers(5, 8))
    return "".join(rng.choice(list(PLATE_ALPHABET), size=length))


def render_plate(rng: np.random.Generator, text: str, width: int) -> np.ndarray:
    """A plate image of the given width: coloured card, dark border, bold Hershey text."""
    font = cv2.FONT_HERSHEY_DUPLEX
    thickness = 2
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = (width * 0.86) / tw
    height = int(th * scale * 1.9)
    bg = _PLATE_COLOURS[int(rng.integers(len(_PLATE_COLOURS)))]
    ink = _INK[int(rng.integers(len(_INK)))]
    plate = np.full((height, width, 3), bg, np.uint8)
    border = max(2, width // 60)
    cv2.rectangle(plate, (0, 0), (width - 1, height - 1), ink, border)
    thick = max(2, round(scale * 2.2))
    (tw2, th2), _ = cv2.getTextSize(text, font, scale, thick)
    org = ((width - tw2) // 2, (height + th2) // 2)
    cv2.putText(plate, text, org, font, scale, ink, thick, cv2.LINE_AA)
    return plate


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Gradient + random shapes + noise, so the detector cannot key on a flat background."""
    c0 = rng.integers(0, 256, 3)
    c1 = rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, width if rng.random() < 0.5 else height, dtype=np.float32)
    grad = (c0[None, :] * (1 - t[:, None]) + c1[None, :] * t[:, None]).astype(np.uint8)
    if grad.shape[0] == width:
        img = np.broadcast_to(grad[None, :, :], (height, width, 3)).copy()
    else:
        img = np.broadcast_to(grad[:, None, :], (height, width, 3)).copy()
    for _ in range(int(rng.integers(4, 14))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
            p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
            cv2.rectangle(img, p1, p2, colour, -1 if rng.random() < 0.6 else 3)
        elif kind == 1:
            centre = tuple(int(v) for v in rng.integers(0, [width, height]))
            cv2.circle(
                img, centre, int(rng.integers(8, 90)), colour, -1 if rng.random() < 0.5 else 3
            )
        else:
            p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
            p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
            cv2.line(img, p1, p2, colour, int(rng.integers(1, 6)))
    noise = rng.normal(0, rng.uniform(2, 10), img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _free(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return all(x2 + 8 < a1 or a2 + 8 < x1 or y2 + 8 < b1 or b2 + 8 < y1 for a1, b1, a2, b2 in taken)


def place_plates(
    rng: np.random.Generator, width: int, height: int, count: int
) -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    placed: list[tuple[str, np.ndarray, tuple[int, int, int, int]]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        text = random_plate_text(rng)
        plate = render_plate(rng, text, int(rng.integers(120, 230)))
        ph, pw = plate.shape[:2]
        if pw >= width or ph >= height:
            continue
        x, y = int(rng.integers(0, width - pw)), int(rng.integers(0, height - ph))
        box = (x, y, x + pw, y + ph)
        if _free(box, [b for _, _, b in placed]):
            placed.append((text, plate, box))
    return placed


def compose(
    background: np.ndarray, plates: list[tuple[str, np.ndarray, tuple[int, int, int, int]]]
) -> Frame:
    image = background.copy()
    signs = []
    for text, plate, (x1, y1, x2, y2) in plates:
        image[y1:y2, x1:x2] = plate
        signs.append(Sign(text=text, box=(x1, y1, x2, y2)))
    return Frame(image=image, signs=signs)


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera-like degradations: brightness/contrast, slight blur, sensor noise."""
    out: np.ndarray = image.astype(np.float32) * rng.uniform(0.75, 1.2) + rng.uniform(-25, 25)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    out += rng.normal(0, rng.uniform(0, 6), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_frame(
    rng: np.random.Generator, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT
) -> Frame:
    background = render_background(rng, width, height)
    frame = compose(background, place_plates(rng, width, height, int(rng.integers(1, 4))))
    frame.image = photometric(rng, frame.image)
    return frame


def make_frames(
    seed: int, count: int, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT
) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [make_frame(rng, width, height) for _ in range(count)]


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
