from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.synthetic.scene import encode_jpeg
from api.synthetic.video import video_frames

console = Console()


def video_jpegs(path: Path, limit: int) -> Iterator[bytes]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise typer.BadParameter(f"cannot open video {path}")
    try:
        for _ in range(limit):
            ok, image = capture.read()
            if not ok:
                return
            yield encode_jpeg(image)
    finally:
        capture.release()


def _describe(result: dict) -> str:
    if "error" in result:
        return f"[red]{result['error']}[/]: {result.get('detail', '')}"
    items = [
        f"{d['label']}({d['confidence']:.2f})" + (f" '{d['text']}'" if d.get("text") else "")
        for d in result.get("detections", [])
    ]
    items += [f"'{t['text']}'" for t in result.get("texts", [])]
    return ", ".join(items) or "—"


async def _run(
    url: str, jpegs: list[bytes], fps: float, headers: dict[str, str], quiet: bool
) -> dict:
    counts = {"sent": 0, "processed": 0, "dropped": 0, "slow_down": 0}
    latencies: list[float] = []
    error: dict | None = None
    started = time.perf_counter()
    async with connect(url, additional_headers=headers, max_size=None) as ws:

        async def reader() -> None:
            nonlocal error
            async for raw in ws:
                message = json.loads(raw)
                if "result" in message:
                    counts["processed"] += 1
                    latencies.append(message.get("timing_ms", 0.0))
                    if not quiet:
                        console.print(
                            f"#{message['frame_index']:>5}  {_describe(message['result'])}"
                        )
                elif message.get("dropped"):
                    counts["dropped"] += 1
                elif message.get("warning") == "slow_down":
                    counts["slow_down"] += 1
                    console.print(
                        f"[yellow]server asks to slow down to {message['suggested_fps']} fps[/]"
                    )
                elif "error" in message:
                    error = message

        reading = asyncio.create_task(reader())
        for jpeg in jpegs:
            if reading.done():
                break
            await ws.send(jpeg)
            counts["sent"] += 1
            if fps > 0:
                await asyncio.sleep(1 / fps)
            else:  # closed loop: wait for this frame's reply before the next
                while (
                    counts["processed"] + counts["dropped"] < counts["sent"] and not reading.done()
                ):
                    await asyncio.sleep(0.001)
        while counts["processed"] + counts["dropped"] < counts["sent"] and not reading.done():
            await asyncio.sleep(0.01)
        reading.cancel()
    elapsed = time.perf_counter() - started
    return {**counts, "seconds": elapsed, "latencies_ms": latencies, "error": error}


def stream(
    url: Annotated[str, typer.Option(help="Server base URL (http or ws)")] = "ws://127.0.0.1:8000",
    pipeline: Annotated[str, typer.Option()] = "yolo_ocr",
    video: Annotated[Path | None, typer.Option(help="Video file to stream")] = None,
    synthetic: Annotated[bool, typer.Option(help="Stream a synthetic plate video")] = False,
    frames: Annotated[int, typer.Option(min=1)] = 60,
    fps: Annotated[float, typer.Option(help="Send rate; 0 = one frame per reply")] = 0.0,
    seed: Annotated[int, typer.Option()] = 1000,
    token: Annotated[str | None, typer.Option(envvar="STREAM_AUTH_TOKEN")] = None,
    quiet: Annotated[bool, typer.Option(help="Only the summary")] = False,
) -> None:
    """Stream a video file or a synthetic video to a running server and print the results."""
    if (video is None) == (not synthetic):
        raise typer.BadParameter("give exactly one of --video FILE or --synthetic")
    if video is not None:
        jpegs = list(video_jpegs(video, frames))
    else:
        jpegs = [encode_jpeg(f.image) for f in video_frames(seed, frames)]
    base = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
    ws_url = f"{base}/ws/video/stream?pipeline_id={pipeline}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        summary = asyncio.run(_run(ws_url, jpegs, fps, headers, quiet))
    except InvalidStatus as exc:
        code = exc.response.status_code
        hint = " (streaming is disabled or not mounted)" if code == 404 else ""
        console.print(f"[red]upgrade refused: HTTP {code}{hint}[/]")
        raise typer.Exit(2) from None
    except (OSError, ConnectionClosed) as exc:
        console.print(f"[red]connection failed: {exc}[/]")
        raise typer.Exit(2) from None
    table = Table(title=f"{pipeline} @ {ws_url}")
    for column in ("sent", "processed", "dropped", "slow_down", "fps", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    lat = summary["latencies_ms"]
    p50 = statistics.median(lat) if lat else 0.0
    p99 = statistics.quantiles(lat, n=100)[98] if len(lat) >= 2 else p50
    table.add_row(
        *(str(summary[k]) for k in ("sent", "processed", "dropped", "slow_down")),
        f"{summary['processed'] / summary['seconds']:.1f}",
        f"{p50:.0f}",
        f"{p99:.0f}",
    )
    console.print(table)
    if summary["error"]:
        console.print(f"[red]server closed the session: {summary['error']}[/]")
        raise typer.Exit(1)
