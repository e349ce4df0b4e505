"""The web app in a real browser: Debian's chromium, driven by Playwright, against ``python app.py`` serving tiny
exports of every kind trained by the test (or the exports in ``$REFACE_APP_MODELS``).

Every request the page makes is intercepted and any to a host other than 127.0.0.1 fails the test (no CDN fonts,
scripts or analytics); after each upload the app's file folder must hold no copy of the uploaded file. One
screenshot per tab is written to the test's temporary folder (and to ``$REFACE_APP_SCREENSHOTS`` when set: that is
how docs/app.md's pictures are made, from the demo exports).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    if os.environ.get("REFACE_APP_MODELS"):
        return Path(os.environ["REFACE_APP_MODELS"])
    from tests.app.tiny_exports import build_exports

    return build_exports(tmp_path_factory.mktemp("app_models"))


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """(url, the app's private folder) of ``python app.py`` running on a free port; stopped with SIGTERM."""
    tmp = tmp_path_factory.mktemp("app_tmp")
    port = _free_port()
    env = dict(os.environ, TMPDIR=str(tmp), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--models", str(models), "--port", str(port)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"app.py did not start (exit {proc.poll()}):\n{(tmp / 'app.log').read_text()[-3000:]}")
            time.sleep(1)
    folders = [p for p in tmp.iterdir() if p.name.startswith("reface_app_")]
    assert len(folders) == 1, folders
    yield url, folders[0]
    proc.terminate()
    assert proc.wait(timeout=60) == 0, (tmp / "app.log").read_text()[-3000:]
    log.close()
    assert not folders[0].exists(), "the app's temporary folder outlived the app"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail("chromium not found: apt-get install chromium (or deselect these tests with -m 'not browser')")
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chrome
        chrome.close()


@pytest.fixture
def page(browser, server, tmp_path_factory):
    url, _ = server
    outside: list[str] = []
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    tab = context.new_page()

    def guard(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    tab.route("**/*", guard)
    tab.goto(url)
    tab.get_by_role("tab", name="About").wait_for(timeout=60_000)
    yield tab
    context.close()
    assert not outside, f"the page asked hosts other than 127.0.0.1: {outside}"


def screenshot(page, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"app_{name}.png"
    page.screenshot(path=path, full_page=True)
    if os.environ.get("REFACE_APP_SCREENSHOTS"):
        out = Path(os.environ["REFACE_APP_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / f"app_{name}.png")


def picture(page, selector: str) -> np.ndarray:
    """The image an <img> of the page shows, fetched from the app as the browser does."""
    src = page.locator(selector).first.get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def wait_for_new_src(page, selector: str, old: str | None, timeout: float = 60_000) -> str:
    page.wait_for_function("([sel, old]) => { const i = document.querySelector(sel); return i && i.src && i.src !== old; }",
                           arg=[selector, old], timeout=timeout)
    return page.locator(selector).first.get_attribute("src")


def assert_no_upload_left(folder: Path, uploaded: Path) -> None:
    digest = hashlib.sha256(uploaded.read_bytes()).hexdigest()
    for path in folder.rglob("*"):
        if path.is_file():
            assert path.name != uploaded.name, f"the upload {uploaded.name} is still on disk: {path}"
            assert hashlib.sha256(path.read_bytes()).hexdigest() != digest, f"a copy of {uploaded.name} is on disk: {path}"


def upload(page, selector: str, path: Path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))


def error_text(page, needle: str) -> str:
    toast = page.locator(".toast-body").filter(has_text=needle).first
    toast.wait_for(timeout=60_000)
    return toast.inner_text()


@pytest.fixture(scope="module")
def face_photo() -> Path:
    from reface_tf.samples import fetch_samples, select_sources

    return fetch_samples(select_sources(["grace_hopper"]))["grace_hopper"]


def test_outcome_changes_the_face_only_and_refuses_bad_uploads(page, server, models, face_photo, tmp_path):
    from reface_tf.app.actions import mark_synthetic
    from reface_tf.app.catalog import OUTCOME, scan_exports
    from reface_tf.faces.landmarks import FaceLandmarker
    from reface_tf.serve.export import export_alignment
    from reface_tf.serve.predict import align_largest_face, paste_back, prediction_alignment

    entry = next(e for e in scan_exports(models) if e.tab == OUTCOME)  # the tab's first model
    size = int(entry.meta["image_size"])
    alignment, _ = prediction_alignment(*export_alignment(entry.path), size)

    _, folder = server
    page.get_by_role("tab", name="Outcome simulation").click()
    upload(page, "#outcome-upload", face_photo)
    page.locator("#outcome-status").get_by_text("Took").wait_for(timeout=120_000)
    assert_no_upload_left(folder, face_photo)
    after = picture(page, "#outcome-slider img >> nth=1")
    photo = np.asarray(Image.open(face_photo).convert("RGB"))
    assert after.shape == photo.shape
    with FaceLandmarker() as landmarker:  # where the face is: the blend weight of an identity translation
        aligned, _ = align_largest_face(photo, size, landmarker, alignment=alignment)
        _, alpha = paste_back(photo, aligned, aligned.image)
    inside, outside = alpha > 0.99, alpha == 0
    assert inside.sum() > 5_000 and outside.sum() > 100_000
    assert np.abs(after.astype(int) - photo)[inside].mean() > 10  # the model's face, not the photo's
    expected = mark_synthetic(photo, "SIMULATED" if entry.meta.get("simulated") else "SYNTHETIC")  # outside the face: the photo itself, with the visible mark
    np.testing.assert_array_equal(after[outside], expected[outside])
    screenshot(page, "outcome", tmp_path)

    fake = tmp_path / "notes.jpg"
    fake.write_text("this is a text file, not a photo\n")
    upload(page, "#outcome-upload", fake)
    assert "notes.jpg: not an image" in error_text(page, "notes.jpg")
    assert_no_upload_left(folder, fake)

    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 180, np.uint8)).save(blank)
    upload(page, "#outcome-upload", blank)
    assert "wall.png: no face found" in error_text(page, "wall.png")
    assert_no_upload_left(folder, blank)
    assert "Traceback" not in page.content()


def test_a_stroke_on_the_segmentation_canvas_changes_the_face(page, tmp_path):
    page.get_by_role("tab", name="Segmentation map → face").click()
    page.locator("#segmap-start").click()
    first = wait_for_new_src(page, "#segmap-face img", None)
    before = picture(page, "#segmap-face img")
    page.locator("#segmap-canvas button[aria-label=Brush]").click()
    box = page.locator("#segmap-canvas canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 + 30
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(x + 5 * i, y, steps=2)
    page.mouse.up()
    page.locator("#segmap-apply").click()
    wait_for_new_src(page, "#segmap-face img", first)
    status = page.locator("#segmap-status").inner_text()
    assert "map pixels painted" in status and not status.split("·")[1].strip().startswith("0 "), status
    changed = np.abs(picture(page, "#segmap-face img").astype(int) - before).max(axis=-1) > 2
    assert changed.mean() > 0.002, changed.mean()  # the painted class reaches the face (> 8 map pixels' worth)
    screenshot(page, "segmap", tmp_path)


def test_faces_generate_and_interpolate(page, tmp_path):
    page.get_by_role("tab", name="Faces").click()
    page.locator("#faces-generate").click()
    wait_for_new_src(page, "#faces-face img", None)
    page.locator("#faces-interpolate").click()
    wait_for_new_src(page, "#faces-strip img", None)
    strip = picture(page, "#faces-strip img")
    assert strip.shape[1] > 4 * strip.shape[0]  # 8 faces side by side
    screenshot(page, "faces", tmp_path)


def test_age_strip_and_sketch_canvas(page, server, face_photo, tmp_path):
    _, folder = server
    page.get_by_role("tab", name="Age").click()
    upload(page, "#age-upload", face_photo)
    src = wait_for_new_src(page, "#age-strip img", None, timeout=120_000)
    assert src and picture(page, "#age-strip img").shape[1] > 600  # the photo and one edit per class
    assert_no_upload_left(folder, face_photo)
    screenshot(page, "age", tmp_path)

    page.get_by_role("tab", name="Sketch → face").click()
    page.locator("#sketch-canvas button[aria-label=Brush]").click()
    box = page.locator("#sketch-canvas canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 40, cy - 40)
    page.mouse.down()
    for i in range(1, 30):
        page.mouse.move(cx - 40 + 3 * i, cy - 40 + 2 * i, steps=2)
    page.mouse.up()
    page.locator("#sketch-draw").click()
    wait_for_new_src(page, "#sketch-face img", None)
    screenshot(page, "sketch", tmp_path)
    page.get_by_role("tab", name="About").click()
    assert "Exports found" in page.locator("#about").inner_text()
