"""The browser client against the real API and Triton: camera and file sources, reads and their
downloads, slow_down, the jobs tab, and a page of another origin refused."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from api.synthetic.scene import Frame
from api.synthetic.video import video_frames, write_video
from tests.support.api_server import ApiServer
from tests.web.conftest import REFUSED_UPGRADE, RESULTS_ABOVE, WebPage, static_server
from tests.web.media import truth_texts, write_webm

pytestmark = pytest.mark.triton

READ_SHARE = 0.8  # of the ground-truth strings shown, at least
FALSE_READS = 2  # strings read that are not in the ground truth, at most
# True once the page's reads contain `need` of the strings in `truth`.
READS_FOUND = """([truth, need]) => {
    const reads = [...document.querySelectorAll('[data-testid="read"]')].map((r) => r.textContent);
    return reads.filter((text) => truth.includes(text)).length >= need;
}"""


def assert_reads_match(web: WebPage, truth: set[str]) -> None:
    web.wait_for(READS_FOUND, [sorted(truth), math.ceil(READ_SHARE * len(truth))], 60_000)
    reads = set(web.reads())
    assert len(reads & truth) >= READ_SHARE * len(truth)
    assert len(reads - truth) <= FALSE_READS, sorted(reads - truth)


def test_camera_autostart_streams_and_reads_the_plates(
    web: WebPage, api: ApiServer, camera_frames: list[Frame], screenshot
) -> None:
    page = web.open(api, pipeline="yolo_ocr", source="camera", autostart="1", fps="10")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "streaming")
    assert_reads_match(web, truth_texts(camera_frames))
    results = web.number("stat-results")
    web.wait_for(RESULTS_ABOVE, results)  # the stats keep counting
    assert web.number("stat-sent") >= web.number("stat-results") > results
    assert web.number("stat-fps") > 0
    assert page.get_by_test_id("stat-latency").get_attribute("data-p95")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "streaming")
    screenshot(page, "web-streaming")


def test_file_source_streams_and_reads_the_plates(
    web: WebPage, api: ApiServer, tmp_path: Path
) -> None:
    frames = video_frames(1400, 100)
    page = web.open(api, source="file", fps="10")
    page.get_by_test_id("file").set_input_files(write_webm(tmp_path / "plates.webm", frames))
    page.get_by_test_id("start").click()
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "streaming")
    assert_reads_match(web, truth_texts(frames))


def test_reads_download_as_csv_and_json(web: WebPage, api: ApiServer) -> None:
    page = web.open(api, source="camera", autostart="1")
    web.wait_for("() => document.querySelectorAll('[data-testid=\"read\"]').length >= 2")
    page.get_by_test_id("stop").click()
    shown = web.reads()
    with page.expect_download() as csv_download:
        page.get_by_test_id("download-csv").click()
    with page.expect_download() as json_download:
        page.get_by_test_id("download-json").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    exported = json.loads(Path(json_download.value.path()).read_text())
    assert csv_download.value.suggested_filename == "framegate-reads.csv"
    assert [row["text"] for row in rows] == shown == [item["text"] for item in exported]
    assert all(item["first_seen"] <= item["last_seen"] and item["count"] >= 1 for item in exported)


def test_slow_down_lowers_the_send_rate_to_the_suggestion(web: WebPage, api: ApiServer) -> None:
    suggested: list[float] = []

    def on_socket(socket) -> None:
        def on_frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("warning") == "slow_down":
                suggested.append(message["suggested_fps"])

        socket.on("framereceived", on_frame)

    web.page.on("websocket", on_socket)
    page = web.open(api, source="camera", autostart="1", fps="60")  # far above what it sustains
    web.wait_for("""() => {
        const pressure = document.querySelector('[data-testid="stat-pressure"]').dataset.suggested;
        const fps = document.querySelector('[data-testid="stat-send-fps"]').dataset.value;
        return pressure !== undefined && Number(fps) === Math.min(60, Number(pressure));
    }""")  # fmt: skip
    shown = float(page.get_by_test_id("stat-pressure").get_attribute("data-suggested"))
    assert shown in suggested  # what the server sent, not a number of the page's own
    assert shown < 60
    expect(page.get_by_test_id("stat-pressure")).to_contain_text("slow_down")


def test_jobs_tab_uploads_a_video_and_shows_progress_then_texts(
    web: WebPage, api: ApiServer, tmp_path: Path
) -> None:
    frames = video_frames(1500, 30)
    video = write_video(tmp_path / "plates.mp4", frames)
    web.page.add_init_script("""
        window.jobStatuses = [];
        addEventListener("DOMContentLoaded", () => {
            const status = document.querySelector('[data-testid="jobs-status"]');
            new MutationObserver(() => jobStatuses.push(status.textContent))
                .observe(status, { childList: true, characterData: true, subtree: true });
        });
    """)  # fmt: skip
    page = web.open(api)
    page.get_by_test_id("tab-jobs").click()
    page.get_by_test_id("jobs-file").set_input_files(video)
    page.get_by_test_id("jobs-submit").click()
    status = page.get_by_test_id("jobs-status")
    expect(status).to_have_attribute("data-state", "completed", timeout=120_000)
    progress = page.get_by_test_id("jobs-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == str(len(frames))
    seen = page.evaluate("() => jobStatuses")
    assert any(re.search(r": (pending|running), \d+ / 30 frames$", text) for text in seen), seen
    truth = truth_texts(frames)
    texts = set(page.get_by_test_id("job-text").all_text_contents())
    assert len(texts & truth) >= READ_SHARE * len(truth)
    assert len(texts - truth) <= FALSE_READS, sorted(texts - truth)


def test_page_of_another_origin_cannot_open_a_stream(
    web: WebPage, api: ApiServer, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text(f"""<!doctype html><link rel="icon" href="data:,">
        <script>
          const socket = new WebSocket("{api.ws()}");
          socket.onopen = () => (document.title = "open");
          socket.onerror = () => (document.title = "refused");
        </script>""")  # fmt: skip
    errors: list[str] = []
    web.page.on(
        "websocket", lambda socket: socket.on("socketerror", lambda error: errors.append(error))
    )
    web.allow_console(REFUSED_UPGRADE)
    with static_server(tmp_path) as origin:
        web.allowed_origins.add(origin)
        web.page.goto(f"{origin}/")
        expect(web.page).to_have_title("refused")
    assert any("403" in error for error in errors), errors
    own = web.open(api)  # the project's own page, same server: allowed
    opened = own.evaluate(f"""() => new Promise((resolve) => {{
        const socket = new WebSocket("{api.ws()}");
        socket.onopen = () => {{ socket.close(); resolve(true); }};
        socket.onerror = () => resolve(false);
    }})""")  # fmt: skip
    assert opened
