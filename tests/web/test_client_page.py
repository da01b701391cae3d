"""The client page as people and automation use it, in the real browser against `framegate up`:
the documented test hooks, a label on every control, keyboard operation, a laptop and a phone
screen (no horizontal scroll, every control on screen, readable type), and no layout jump when
results arrive."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from api.synthetic.video import video_frames
from tests.support.api_server import ApiServer
from tests.web.conftest import LAPTOP, RESULTS_ABOVE, WebPage, watched_page
from tests.web.media import letterboxed, write_webm

pytestmark = pytest.mark.triton

PHONE = {"width": 390, "height": 844}
SCREENS = {
    "laptop": {"viewport": LAPTOP},
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
}
# The hooks (SPEC's interface list), each with the element it must be.
HOOKS = {
    "pipeline": "SELECT",
    "source": "SELECT",
    "file": "INPUT",
    "token": "INPUT",
    "start": "BUTTON",
    "stop": "BUTTON",
    "status": "P",
    "overlay": "CANVAS",
    "reads": "OL",
    "stat-sent": "DD",
    "stat-results": "DD",
    "stat-dropped": "DD",
    "stat-fps": "DD",
    "stat-latency": "DD",
    "stat-send-fps": "DD",
}
STREAM_CONTROLS = ["tab-stream", "pipeline", "source", "fps", "token", "start"]
MIN_FONT_PX = 12.0
MIN_TARGET_PX = 24.0  # WCAG 2.2 target size (minimum)
TAB_LIMIT = 40
ONE_READ = "() => document.querySelectorAll('[data-testid=\"read\"]').length >= 1"
# Controls with neither a <label for> nor an aria-label (buttons: nor a text).
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => {
    const aria = el.getAttribute("aria-label")?.trim();
    const label = el.id && [...document.querySelectorAll(`label[for="${el.id}"]`)]
      .some((l) => l.textContent.trim());
    const text = el.tagName === "BUTTON" && el.textContent.trim();
    return !(aria || label || text);
  })
  .map((el) => el.dataset.testid || el.outerHTML)"""
# Controls a keyboard user can reach now: shown, enabled, not taken out of the tab order.
FOCUSABLE = """() => [...document.querySelectorAll("input, select, textarea, button, [tabindex]")]
  .filter((el) => el.checkVisibility() && !el.disabled && el.tabIndex >= 0)
  .map((el) => el.dataset.testid)"""
# Shown elements under the panel in view: their boxes, and the smallest type among them.
SCREEN_FACTS = """() => {
  const CONTROLS = "input, select, button, canvas, video, ol, table";
  const panel = document.querySelector('[role="tabpanel"]:not([hidden])');
  const shown = [...document.querySelectorAll("header *, main *")]
    .filter((el) => el.checkVisibility() && (panel.contains(el) || !el.closest("main")));
  const texts = shown.filter((el) => [...el.childNodes]
    .some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()));
  const controls = shown.filter((el) => el.matches(CONTROLS));
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left, r.right, r.width, r.height];
  };
  return {
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    minFont: Math.min(...texts.map((el) => parseFloat(getComputedStyle(el).fontSize))),
    controls: controls.map((el) => [el.dataset.testid || el.id || el.tagName, ...box(el)]),
  };
}"""  # fmt: skip
BOXES = """(ids) => Object.fromEntries(ids.map((id) => {
  const r = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect();
  return [id, [r.x + scrollX, r.y + scrollY, r.width, r.height]];
}))"""  # fmt: skip
STEADY = ["overlay", "preview", "stat-latency", "stat-pressure", "reads", "start", "stop"]


@pytest.fixture(params=sorted(SCREENS))
def screen(request: pytest.FixtureRequest, browser: Browser) -> Iterator[WebPage]:
    with watched_page(browser, **SCREENS[request.param]) as watched:
        yield watched


def focused(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement?.dataset.testid ?? null")


def tab_stops(page: Page) -> list[str]:
    """Where Tab goes, from the top of the page round to where it started."""
    page.evaluate("() => document.activeElement?.blur()")
    stops: list[str] = []
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        testid = focused(page)
        if testid is not None and stops and testid == stops[0]:
            return stops
        if testid is not None:
            stops.append(testid)
    raise AssertionError(f"Tab never came round: {stops}")


def assert_tab_reaches_every_control(page: Page) -> list[str]:
    stops = tab_stops(page)
    reachable = page.evaluate(FOCUSABLE)
    assert set(reachable) <= set(stops), (reachable, stops)
    return stops


def tab_to(page: Page, testid: str) -> None:
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if focused(page) == testid:
            return
    raise AssertionError(f"Tab never reached {testid}")


def assert_fits(page: Page) -> None:
    facts = page.evaluate(SCREEN_FACTS)
    width = facts["clientWidth"]
    assert facts["scrollWidth"] <= width, facts  # no horizontal scroll
    assert facts["minFont"] >= MIN_FONT_PX, facts["minFont"]
    for name, left, right, box_width, box_height in facts["controls"]:
        assert left >= 0 and right <= width, (name, left, right)  # on screen, not cut off
        assert box_width >= MIN_TARGET_PX and box_height >= MIN_TARGET_PX, (name, box_width)


def test_documented_hooks_exist_with_their_semantics(web: WebPage, api: ApiServer) -> None:
    page = web.open(api)
    for testid, tag in HOOKS.items():
        hook = page.get_by_test_id(testid)
        expect(hook).to_have_count(1)
        assert hook.evaluate("(el) => el.tagName") == tag, testid
    options = page.get_by_test_id("source").locator("option")
    assert [o.get_attribute("value") for o in options.all()] == ["camera", "file"]
    assert page.get_by_test_id("file").get_attribute("type") == "file"
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "idle")
    expect(status).to_have_attribute("data-code", "")
    expect(page.get_by_test_id("pipeline").locator("option[value=yolo_ocr]")).to_have_count(1)


def test_every_control_has_a_label(web: WebPage, api: ApiServer) -> None:
    page = web.open(api)
    assert page.evaluate(UNLABELLED) == []
    for panel in ("tab-stream", "tab-jobs"):
        page.get_by_test_id(panel).click()
        for control in page.locator("input, select, button").all():
            if control.is_visible():
                expect(control).to_have_accessible_name(re.compile(r"\w"))
    expect(page.get_by_label("Pipeline")).to_have_attribute("data-testid", "pipeline")
    expect(page.get_by_label("Token (optional)")).to_have_attribute("data-testid", "token")


def test_keyboard_reaches_every_control_and_starts_and_stops_the_stream(
    web: WebPage, api: ApiServer
) -> None:
    page = web.open(api, source="camera", fps="10")
    expect(page.get_by_test_id("pipeline").locator("option")).not_to_have_count(0)
    assert set(STREAM_CONTROLS) <= set(assert_tab_reaches_every_control(page))

    tab_to(page, "source")
    page.keyboard.press("ArrowDown")  # a closed <select> takes arrow keys
    expect(page.get_by_test_id("source")).to_have_value("file")
    assert "file" in assert_tab_reaches_every_control(page)
    tab_to(page, "source")
    page.keyboard.press("ArrowUp")
    expect(page.get_by_test_id("source")).to_have_value("camera")

    tab_to(page, "tab-stream")
    page.keyboard.press("ArrowRight")  # the tab list: one Tab stop, arrows between tabs
    assert focused(page) == "tab-jobs"
    expect(page.get_by_test_id("jobs-submit")).to_be_visible()
    assert {"jobs-file", "jobs-submit"} <= set(assert_tab_reaches_every_control(page))
    tab_to(page, "tab-jobs")
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_test_id("start")).to_be_visible()

    status = page.get_by_test_id("status")
    tab_to(page, "start")
    page.keyboard.press("Enter")
    expect(status).to_have_attribute("data-state", "streaming")
    web.wait_for(RESULTS_ABOVE, 0)
    web.wait_for(ONE_READ)
    assert focused(page) == "stop"  # focus follows: Start is disabled while streaming
    page.keyboard.press("Space")
    expect(status).to_have_attribute("data-state", "idle")
    assert focused(page) == "start"
    assert {"download-csv", "download-json"} <= set(assert_tab_reaches_every_control(page))
    tab_to(page, "download-json")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "framegate-reads.json"

    tab_to(page, "start")
    page.keyboard.press("Space")
    expect(status).to_have_attribute("data-state", "streaming")
    page.keyboard.press("Enter")  # on Stop, where the focus went
    expect(status).to_have_attribute("data-state", "idle")
    assert len(web.websockets) == 2


def test_screen_has_no_horizontal_scroll_and_every_control_on_it(
    screen: WebPage, api: ApiServer
) -> None:
    page = screen.open(api, source="camera", autostart="1", fps="10")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "streaming")
    screen.wait_for(RESULTS_ABOVE, 0)
    screen.wait_for(ONE_READ)
    assert_fits(page)  # streaming: stats, latency, reads filled in
    page.get_by_test_id("stop").click()
    page.get_by_test_id("source").select_option("file")
    expect(page.get_by_test_id("file")).to_be_visible()
    assert_fits(page)
    page.get_by_test_id("tab-jobs").click()
    expect(page.get_by_test_id("jobs-submit")).to_be_visible()
    assert_fits(page)


def test_layout_does_not_move_when_results_arrive(
    screen: WebPage, api: ApiServer, tmp_path: Path
) -> None:
    """A 4:3 source (the camera's 640x480) on a page laid out before any frame: the boxes stay
    where they were once results (and their frames, texts, latencies) come in."""
    video = write_webm(tmp_path / "plates-4x3.webm", letterboxed(video_frames(1600, 60), 480))
    page = screen.open(api, source="file", fps="10")
    expect(page.get_by_test_id("pipeline").locator("option")).not_to_have_count(0)
    page.get_by_test_id("file").set_input_files(video)
    before = page.evaluate(BOXES, STEADY)
    page.get_by_test_id("start").click()
    screen.wait_for(RESULTS_ABOVE, 0)
    screen.wait_for(ONE_READ)
    first = page.evaluate(BOXES, STEADY)
    screen.wait_for(RESULTS_ABOVE, screen.number("stat-results") + 5)
    later = page.evaluate(BOXES, STEADY)
    assert first == before
    assert later == before
