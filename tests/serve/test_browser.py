"""The web page in a real browser (headless Debian chromium) against the real service.

One module-wide server (SQLite in a temp dir, one worker, 8 frames, API keys required) is
started with uvicorn in a thread; the page signs in with a key, uploads a sample clip and must
show what the API answered: verdict, gauge, faces, timeline, history. Skipped, with the
reason, only when chromium or playwright cannot start.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
VIDEO = ROOT / "examples" / "fake_ffpp_deepfakes_866_878.mp4"
SCREENSHOTS = ROOT / "runs" / "screenshots"
VERDICT_WORDS = ("Authentic", "Suspicious", "Manipulated")
ANALYSIS_TIMEOUT_MS = 120_000
# Largest per-channel standard deviation of an <img>'s pixels: a blank or single-colour picture is near 0.
PIXEL_SPREAD = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const spreads = [0, 1, 2].map((channel) => {
    let sum = 0, squares = 0, n = 0;
    for (let i = channel; i < data.length; i += 4) { sum += data[i]; squares += data[i] * data[i]; n += 1; }
    return Math.sqrt(squares / n - (sum / n) ** 2);
  });
  return Math.max(...spreads);
}"""
SHOWS_VERDICT = "(words) => words.includes(document.querySelector('#verdict').textContent.trim())"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    except Error as err:
        playwright.stop()
        pytest.skip(f"chromium does not start: {str(err).splitlines()[0]}")
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class Server:
    url: str
    token: str  # an API key of the server's, for the page to sign in with


@pytest.fixture(scope="module")
def server(browser: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real app on a free loopback port; its lifespan starts and stops the worker process."""
    import uvicorn

    from fakescope.serve import ServeSettings, create_app
    from fakescope.serve.auth import create_key

    port = free_port()
    settings = ServeSettings(
        data_dir=tmp_path_factory.mktemp("serve"), no_auth=False, workers=1, frames=8, host="127.0.0.1", port=port
    )
    app = create_app(settings)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start within 60 s")
        time.sleep(0.05)
    with app.state.service.sessions() as session:
        _, token = create_key(session, "browser")
    yield Server(f"http://127.0.0.1:{port}", token)
    uv.should_exit = True
    thread.join(timeout=60)


def open_page(browser, server: Server, width: int) -> tuple[object, list[str]]:
    """The page in a fresh browser profile, signed in with the server's key, and the list its script errors go to."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url + "/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.is_hidden("#upload") and context.cookies() == [], "before signing in the page shows and holds nothing"
    page.fill("#api-key", server.token)
    with page.expect_response(lambda r: "/v1/beacon" in r.url) as beacon:
        page.click("#login-submit")
    assert beacon.value.status == 204, "the page_view beacon was refused"
    assert any(c["name"] == "fakescope_session" for c in context.cookies()), "signing in set no session cookie"
    assert page.is_hidden("#login") and page.is_visible("#upload")
    assert page.inner_text("#account-name") == "Signed in with browser"
    return page, errors


def analyse(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    page.wait_for_function(SHOWS_VERDICT, arg=list(VERDICT_WORDS), timeout=ANALYSIS_TIMEOUT_MS)


def test_upload_shows_verdict_faces_timeline_and_history(browser, server: Server, tmp_path: Path) -> None:
    page, errors = open_page(browser, server, 1280)
    analyse(page, VIDEO)

    assert re.fullmatch(r"\d{1,3}% probability of manipulation", page.inner_text("#score"))
    assert "done" in page.inner_text("#status")
    assert page.locator("#gauge svg .gauge-value").count() == 1
    assert page.is_hidden("#alert")

    chart = page.locator("#timeline svg")
    assert chart.count() == 1
    assert "Probability of manipulation" in chart.locator("title").first.text_content()
    assert page.locator("#timeline svg [data-modality=video] .point").count() >= 1
    assert page.locator("#timeline svg [data-modality=video] :is(path.line, line.span)").count() == 1

    faces = page.locator("#faces li")
    assert faces.count() >= 1
    assert re.search(r"\d{1,3}% probability of manipulation", faces.first.inner_text())
    page.wait_for_function("document.querySelector('#faces img')?.naturalWidth > 0", timeout=15_000)

    row = page.locator("#history .history-item", has_text=VIDEO.name)
    row.first.wait_for(timeout=10_000)
    assert any(word in row.first.inner_text() for word in VERDICT_WORDS)
    assert errors == []

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / "web-page.png"), full_page=True)
    spread = page.locator("#faces img").first.evaluate(PIXEL_SPREAD)
    assert spread > 12, f"the face thumbnail is a flat picture (pixel spread {spread:.1f}), not a face"

    page.reload()  # the session cookie signs the reloaded page in
    row = page.locator("#history .history-item", has_text=VIDEO.name)
    row.first.wait_for(timeout=10_000)
    row.first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(SHOWS_VERDICT, arg=list(VERDICT_WORDS), timeout=10_000)
    assert page.inner_text("#result-file") == VIDEO.name
    page.context.close()


def test_a_temporal_models_attention_marks_the_frames_that_drove_a_face(browser, server: Server) -> None:
    """Face tracks scored by a temporal model carry attention per frame; the timeline marks those above 1.5x an even share."""
    page, errors = open_page(browser, server, 1280)
    result = {
        "duration": 4.0,
        "segments": [{"start": 0.0, "end": 1.0, "score": 0.4}, {"start": 1.0, "end": 2.0, "score": 0.8}],
        "faces": [
            {
                "track_id": 0,
                "score": 0.7,
                "frames": [[0.5, 0.4, []], [1.5, 0.8, []], [2.5, 0.6, []]],
                "attention": [0.5, 2.0, 0.5],
            },
            {"track_id": 1, "score": 0.2, "frames": [[0.5, 0.2, []]]},
        ],
    }
    marks = page.evaluate(
        "r => { drawTimeline(document.querySelector('#timeline'), r); return [...document.querySelectorAll("
        "'#timeline .attention-mark title')].map(t => t.textContent); }",
        result,
    )
    assert len(marks) == 1 and marks[0].startswith("Face 1: a frame that drove its score") and "2.0x" in marks[0]
    assert errors == []
    page.context.close()


def test_phone_width_has_no_horizontal_scroll(browser, server: Server, tmp_path: Path) -> None:
    page, errors = open_page(browser, server, 360)
    analyse(page, VIDEO)
    page.locator("#faces li").first.wait_for()
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 361, f"the page is {width} px wide at a 360 px viewport"
    page.screenshot(path=str(tmp_path / "web-page-360.png"), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "web-page-360.png"), full_page=True)
    assert errors == []
    page.context.close()


def test_keyboard_upload_of_unsupported_file_shows_the_api_error(browser, server: Server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture, a video or a recording\n" * 20)
    page, errors = open_page(browser, server, 1280)
    with page.expect_file_chooser() as chooser:
        page.focus("#dropzone")  # inside: a round trip after the chooser is intercepted, which is not awaited
        page.keyboard.press("Enter")
    with page.expect_response(lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST") as answer:
        chooser.value.set_files(str(notes))
    assert answer.value.status == 415
    detail = answer.value.json()["detail"]
    page.wait_for_selector("#alert:not([hidden])")
    assert page.inner_text("#alert") == detail
    assert page.is_hidden("#result")
    assert errors == []
    page.context.close()


def test_a_wrong_key_is_refused_and_signing_out_ends_the_session(browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url + "/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#api-key", "fsk_" + "x" * 43)
    with page.expect_response(lambda r: r.url.endswith("/v1/session")) as answer:
        page.press("#api-key", "Enter")
    assert answer.value.status == 401
    page.wait_for_selector("#login-alert:not([hidden])")
    assert page.inner_text("#login-alert") == answer.value.json()["detail"]
    assert page.is_hidden("#upload") and page.is_hidden("#history-card") and context.cookies() == []

    page.fill("#api-key", server.token)
    page.click("#login-submit")
    page.wait_for_selector("#upload:not([hidden])")
    assert page.input_value("#api-key") == "", "the key does not stay in the form"
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    assert page.is_hidden("#upload") and page.is_hidden("#account")
    assert not any(c["name"] == "fakescope_session" for c in context.cookies())
    assert context.request.get(server.url + "/v1/jobs").status == 401
    page.reload()
    page.wait_for_selector("#login:not([hidden])")
    assert errors == []
    context.close()


def test_api_docs_render_from_this_server_alone(browser, server: Server) -> None:
    """/docs draws Swagger UI with nothing fetched from another host and nothing refused by its CSP."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert page.locator(".opblock").count() >= 10, "the operations are listed"
    assert requests and all(url.startswith(server.url + "/") for url in requests), requests
    assert not [line for line in console if line.startswith("error")], console
    page.close()
