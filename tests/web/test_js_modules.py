"""The client's pure modules, imported in the real browser from a plain static server (no API):
backoff schedule, close handling, send rate, stats, reads and the connection state machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.routes.web import WEB_DIR
from tests.web.conftest import WebPage, static_server

pytestmark = pytest.mark.triton  # drives a browser

# A stand-in WebSocket that records every socket made (the test plays the server's part), and
# page timers running 50 times faster, so real backoff schedules pass in milliseconds.
FAKE_SOCKET = """
const WARP = 50;
const [realTimeout, realInterval] = [window.setTimeout, window.setInterval];
window.setTimeout = (fn, ms = 0, ...args) => realTimeout(fn, ms / WARP, ...args);
window.setInterval = (fn, ms = 0, ...args) => realInterval(fn, ms / WARP, ...args);
window.sockets = [];
window.WebSocket = class {
  static OPEN = 1;
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(data) { this.sent.push(data); }
  close(code) { this.closedWith = code; }
  open() { this.readyState = 1; this.onopen(); }
  serverClose(code) { this.readyState = 3; this.onclose({ code }); }
};
"""


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with static_server(WEB_DIR) as url:
        yield url


@pytest.fixture
def js(web: WebPage, origin: str) -> WebPage:
    web.allowed_origins.add(origin)
    web.page.add_init_script(FAKE_SOCKET)
    web.page.goto(f"{origin}/js/")  # any page of that origin: modules are imported by path
    return web


def run(web: WebPage, body: str) -> object:
    return web.page.evaluate(f"async () => {{ {body} }}")


def test_backoff_doubles_from_one_to_sixteen_seconds_then_gives_up(js: WebPage) -> None:
    ceilings, floors, after = run(js, """
        const { retryDelay } = await import("/js/backoff.js");
        const attempts = [1, 2, 3, 4, 5];
        return [attempts.map((a) => retryDelay(a, () => 1)),
                attempts.map((a) => retryDelay(a, () => 0)), retryDelay(6)];
    """)  # fmt: skip
    assert ceilings == [1000, 2000, 4000, 8000, 16000]
    assert floors == [500, 1000, 2000, 4000, 8000]  # jitter: between half and all of it
    assert after is None


def test_backoff_rejects_a_bad_attempt(js: WebPage) -> None:
    message = run(js, """
        const { retryDelay } = await import("/js/backoff.js");
        try { retryDelay(0); } catch (error) { return `${error.name}: ${error.message}`; }
    """)  # fmt: skip
    assert message == "RangeError: attempt must be an integer >= 1, got 0"


def test_only_abnormal_restart_and_try_again_closes_are_retried(js: WebPage) -> None:
    retried = run(js, """
        const { shouldReconnect } = await import("/js/backoff.js");
        return Object.fromEntries([1000, 1001, 1006, 1008, 1011, 1012, 1013]
            .map((code) => [code, shouldReconnect(code)]));
    """)  # fmt: skip
    assert retried == {
        "1000": False, "1001": False, "1006": True, "1008": False,
        "1011": False, "1012": True, "1013": True,
    }  # fmt: skip


def test_close_1001_reads_as_disabled_by_the_operator(js: WebPage) -> None:
    text = run(js, """
        const { describeClose } = await import("/js/backoff.js");
        return describeClose(1001, { error: "streaming_disabled", detail: "flag off" });
    """)  # fmt: skip
    assert text == "streaming has been disabled by the operator: streaming_disabled: flag off"


def test_stream_url_follows_the_page_origin(js: WebPage) -> None:
    urls = run(js, """
        const { streamUrl } = await import("/js/connection.js");
        return [streamUrl(new URL("https://gate.example/"), "ocr", "t k"),
                streamUrl(new URL("http://127.0.0.1:8000/x"), "yolo_ocr")];
    """)  # fmt: skip
    assert urls == [
        "wss://gate.example/ws/video/stream?pipeline_id=ocr&token=t+k",
        "ws://127.0.0.1:8000/ws/video/stream?pipeline_id=yolo_ocr",
    ]


def test_send_rate_drops_to_the_suggestion_and_climbs_back_when_quiet(js: WebPage) -> None:
    steps = run(js, """
        const { SendRate } = await import("/js/rate.js");
        const rate = new SendRate(15, 0);
        const seen = [rate.fps];
        rate.slowDown(4.5, 0); seen.push(rate.fps);
        seen.push(rate.tick(1000));          // not quiet for long enough yet
        rate.dropped(1200); seen.push(rate.tick(2000));  // a drop restarts the quiet spell
        seen.push(rate.tick(2700));          // 1.5 s without a drop: one step up
        seen.push(rate.tick(4200), rate.tick(5700), rate.tick(7200), rate.tick(8700));
        rate.slowDown(40, 9000); seen.push(rate.fps);  // a suggestion never speeds it up
        return seen;
    """)  # fmt: skip
    assert steps == [15, 4.5, 4.5, 4.5, 5.63, 7.04, 8.8, 11, 13.75, 13.75]


def test_percentile_is_nearest_rank(js: WebPage) -> None:
    values = run(js, """
        const { percentile } = await import("/js/stats.js");
        const samples = [50, 10, 40, 20, 30];
        return [percentile(samples, 50), percentile(samples, 95), percentile([], 50)];
    """)  # fmt: skip
    assert values == [30, 50, None]


def test_reads_are_deduplicated_newest_first_and_exported(js: WebPage) -> None:
    csv, exported = run(js, """
        const { Reads, textsOf } = await import("/js/reads.js");
        const reads = new Reads();
        const result = { detections: [{ text: "AB12C" }, { text: "" }, {}],
                         texts: [{ text: 'say "hi", ok' }] };
        reads.add(textsOf(result), new Date("2026-01-01T00:00:00Z"));
        reads.add(["AB12C"], new Date("2026-01-01T00:00:05Z"));
        return [reads.toCSV(), reads.toJSON()];
    """)  # fmt: skip
    assert csv.split("\r\n") == [
        "text,first_seen,last_seen,count",
        '"say ""hi"", ok",2026-01-01T00:00:00.000Z,2026-01-01T00:00:00.000Z,1',
        "AB12C,2026-01-01T00:00:00.000Z,2026-01-01T00:00:05.000Z,2",
        "",
    ]
    assert [r["text"] for r in exported] == ['say "hi", ok', "AB12C"]


CONNECTION = """
    const { StreamConnection } = await import("/js/connection.js");
    const statuses = [];
    const connection = new StreamConnection("ws://gate.example/ws/video/stream?pipeline_id=ocr", {
        onStatus: (s) => statuses.push([s.state, s.code]), onOpen() {}, onMessage() {},
    }, { reachable: async () => REACHABLE, random: () => 0 });
    connection.start();
    const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const until = async (condition, what) => {  // waits on events, not on a schedule
        for (let i = 0; i < 20000 && !condition(); i += 1) await settle(10);
        if (!condition()) throw new Error(`timed out waiting for ${what}`);
    };
    const state = () => statuses.at(-1)[0];
"""


def connection(web: WebPage, body: str, reachable: bool = True) -> object:
    return run(web, CONNECTION.replace("REACHABLE", str(reachable).lower()) + body)


DELIBERATE = [(1000, "closed"), (1001, "closed"), (1008, "error"), (1011, "error")]


@pytest.mark.parametrize(("code", "state"), DELIBERATE)
def test_deliberate_close_never_reconnects(js: WebPage, code: int, state: str) -> None:
    sockets, statuses = connection(js, f"""
        sockets[0].open();
        sockets[0].serverClose({code});
        await until(() => state() === "{state}", "the final state");
        await settle(700);  // a retry would come by 500 ms (with this jitter): none does
        return [sockets.length, statuses];
    """)  # fmt: skip
    assert sockets == 1
    assert statuses[-1] == [state, str(code)]


def test_restart_close_reconnects_after_the_backoff(js: WebPage) -> None:
    sockets, statuses = connection(js, """
        sockets[0].open();
        sockets[0].serverClose(1012);
        await until(() => sockets.length === 2, "the retry");
        return [sockets.length, statuses.map(([state]) => state)];
    """)  # fmt: skip
    assert sockets == 2
    assert statuses[:3] == ["connecting", "streaming", "reconnecting"]
    assert statuses[-1] == "connecting"


def test_refused_upgrade_with_the_server_up_is_streaming_disabled(js: WebPage) -> None:
    sockets, last = connection(js, """
        sockets[0].serverClose(1006);  // never opened
        await until(() => state() === "error", "the refusal");
        await settle(700);  // and no retry
        return [sockets.length, statuses.at(-1)];
    """)  # fmt: skip
    assert sockets == 1
    assert last == ["error", "404"]


def test_refused_retry_is_confirmed_by_a_second_refusal(js: WebPage) -> None:
    sockets, last = connection(js, """
        sockets[0].open();
        sockets[0].serverClose(1012);
        await until(() => sockets.length === 2, "the retry");
        sockets[1].serverClose(1006);  // refused, the server up: maybe it just came back
        await until(() => sockets.length === 3, "a second retry");
        sockets[2].serverClose(1006);  // refused again: it is refusing
        await until(() => state() === "error", "the refusal");
        return [sockets.length, statuses.at(-1)];
    """)  # fmt: skip
    assert sockets == 3
    assert last == ["error", "404"]


def test_unreachable_server_is_retried_then_given_up(js: WebPage) -> None:
    sockets, last = connection(js, """
        for (let retry = 1; retry <= 5; retry += 1) {
            sockets.at(-1).serverClose(1006);
            await until(() => sockets.length === retry + 1, `retry ${retry}`);
        }
        sockets.at(-1).serverClose(1006);
        await until(() => state() === "error", "giving up");
        return [sockets.length, statuses.at(-1)];
    """, reachable=False)  # fmt: skip
    assert sockets == 6  # the first try and five retries
    assert last == ["error", "1006"]


def test_retries_keep_showing_the_close_that_started_them(js: WebPage) -> None:
    codes = connection(js, """
        sockets[0].open();
        sockets[0].serverClose(1012);
        await until(() => sockets.length === 2, "the retry");
        sockets[1].serverClose(1006);  // the server is still away
        await until(() => state() === "reconnecting", "the second countdown");
        return statuses.filter(([state]) => state === "reconnecting").map(([, code]) => code);
    """, reachable=False)  # fmt: skip
    assert set(codes) == {"1012"}


def test_stop_cancels_a_pending_retry(js: WebPage) -> None:
    sockets, last = connection(js, """
        sockets[0].open();
        sockets[0].serverClose(1013);
        connection.stop();
        await settle(700);
        return [sockets.length, statuses.at(-1)];
    """)  # fmt: skip
    assert sockets == 1
    assert last == ["idle", None]
