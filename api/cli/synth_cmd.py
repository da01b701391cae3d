from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.synthetic.video import video_frames, write_video


def synth(
    out: Annotated[Path, typer.Argument(help="Output .mp4; ground truth goes beside it as .json")],
    seed: Annotated[int, typer.Option(help="Seeds < 1000 are reserved for training")] = 1000,
    frames: Annotated[int, typer.Option(min=1)] = 150,
    fps: Annotated[float, typer.Option(min=1)] = 15.0,
) -> None:
    """Write a deterministic synthetic plate video with ground truth."""
    write_video(out, video_frames(seed, frames), fps)
    typer.echo(f"wrote {out} ({frames} frames) and {out.with_suffix('.json')}")
