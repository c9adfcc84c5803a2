"""The app's page in a real headless Chromium (Debian's ``chromium`` driven by Playwright) on
GrabCut: a click at the robot's point turns the overlay into a mask whose IoU against the mask
file is above 0.8, undo empties it, the exports are the mask and a replayable click file, a
second tab works on another image at the same time, the robot's button plays to the target,
a traversal URL and an oversized upload are refused, and a predictor's error is a message on
the page while the server goes on.

``IIS_UPDATE_DOCS=1`` also rewrites ``docs/app.png``, the README's screenshot."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_helpers import grabcut_truth, iou_of, live_server
from conftest import real_set
from iis_pipe.app import Catalog, Limits, make_app
from iis_pipe.clicking import standard
from iis_pipe.clicking.clickfile import read_clicks
from iis_pipe.predictors import GrabCut

CHROMIUM = os.environ.get("IIS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS_SHOT = Path(__file__).resolve().parents[1] / "docs" / "app.png"
MAX_UPLOAD = 1 << 20
FIRST_CLICK_IOU = 0.8  # GrabCut's classical predictor on image 124080 after the robot's 1st click

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def grabcut():
    return real_set("GrabCut")


@pytest.fixture(scope="module")
def url(grabcut):
    app = make_app(Catalog([grabcut]), GrabCut(), limits=Limits(max_upload=MAX_UPLOAD))
    with live_server(app) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (make test installs Debian's chromium as root; "
                    "IIS_CHROMIUM names another)")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, accept_downloads=True,
            viewport={"width": 1100, "height": 640})
        ctx.set_default_timeout(20_000)
        yield ctx
        ctx.close()


def open_image(page, url, key):
    page.goto(url + "/")
    page.wait_for_selector("#image option", state="attached")
    value = page.eval_on_selector(
        "#image", "(s, key) => [...s.options].find(o => o.text.endsWith(' / ' + key)).value", key)
    page.select_option("#image", value)
    page.wait_for_function("v => document.querySelector('#canvas').dataset.image === v && "
                           "!document.body.dataset.busy", arg=value)
    return page.eval_on_selector("#canvas", "c => c.dataset.session")


def click_pixel(page, y, x, clicks_after, button="left"):
    """Click the canvas on image pixel ``(y, x)`` (the canvas is scaled to the page) and wait
    until the page shows ``clicks_after`` clicks with their mask."""
    box = page.locator("#canvas").bounding_box()
    w, h = page.eval_on_selector("#canvas", "c => [c.width, c.height]")
    # Mouse events carry whole CSS pixels: the first whole one inside the image pixel.
    at = []
    for v, start, scale in ((x, box["x"], box["width"] / w), (y, box["y"], box["height"] / h)):
        p = math.ceil(round(start + v * scale, 6))
        assert p < start + (v + 1) * scale, "the canvas is drawn smaller than the image"
        at.append(p)
    page.mouse.click(*at, button=button)
    page.wait_for_selector(f"#canvas[data-clicks='{clicks_after}']", state="attached")


def download(page, selector, tmp_path):
    with page.expect_download() as d:
        page.click(selector)
    path = tmp_path / d.value.suggested_filename
    d.value.save_as(path)
    return path


def mask_file(path):
    m = np.array(Image.open(path))
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    return m == 255


def test_click_overlay_undo_export(browser, url, grabcut, tmp_path):
    key = "124080"
    gt, ignore = grabcut_truth(grabcut, key)
    page = browser.new_page()
    open_image(page, url, key)
    before = page.locator("#canvas").screenshot()
    y, x, positive = standard(gt, np.zeros_like(gt), ignore)
    assert positive
    click_pixel(page, y, x, 1)
    # The overlay changed the drawn pixels (the mask is shown, not only stored).
    assert page.locator("#canvas").screenshot() != before
    if os.environ.get("IIS_UPDATE_DOCS") == "1":
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(DOCS_SHOT), full_page=True)
    mask = mask_file(download(page, "#export-mask", tmp_path))
    assert mask.shape == gt.shape
    score = iou_of(gt, mask, ignore)
    assert score > FIRST_CLICK_IOU
    assert page.text_content("#iou") == f"{score:.3f}"
    clicks_path = download(page, "#export-clicks", tmp_path)
    assert clicks_path.name == f"{key}-clicks.json"
    (obj,) = read_clicks(clicks_path)
    assert (obj.key, obj.object, obj.dataset, obj.size) == (key, 0, "GrabCut", gt.shape)
    assert [tuple(c) for c in obj.clicks] == [(y, x, True)]
    # A right click is negative.
    click_pixel(page, 2, 2, 2, button="right")
    assert json.loads(download(page, "#export-clicks", tmp_path).read_text()
                      )["objects"][0]["clicks"][1] == [2, 2, 0]
    page.keyboard.press("Control+z")
    page.wait_for_selector("#canvas[data-clicks='1']", state="attached")
    page.click("#undo")
    page.wait_for_selector("#canvas[data-clicks='0']", state="attached")
    assert not mask_file(download(page, "#export-mask", tmp_path)).any()
    assert page.text_content("#iou") == "\u2013"
    page.close()


def test_second_tab_on_another_image_at_the_same_time(browser, url, grabcut, tmp_path):
    tabs = {}
    for key in ("124080", "106024"):
        page = browser.new_page()
        tabs[key] = (page, open_image(page, url, key))
    assert tabs["124080"][1] != tabs["106024"][1]
    for key, (page, _) in tabs.items():
        gt, ignore = grabcut_truth(grabcut, key)
        y, x, _ = standard(gt, np.zeros_like(gt), ignore)
        click_pixel(page, y, x, 1)
    for key, (page, _) in tabs.items():  # each tab still shows its own image's mask
        gt, ignore = grabcut_truth(grabcut, key)
        mask = mask_file(download(page, "#export-mask", tmp_path / key))
        assert mask.shape == gt.shape and iou_of(gt, mask, ignore) > 0.5
        assert page.eval_on_selector("#canvas", "c => c.dataset.clicks") == "1"
        page.close()


def test_robot_button_plays_to_the_target(browser, url, grabcut):
    page = browser.new_page()
    open_image(page, url, "124080")
    page.select_option("#target", "0.9")
    page.click("#robot")
    page.wait_for_function("() => document.querySelector('#canvas').dataset.clicks !== '0' && "
                           "!document.body.dataset.busy", timeout=60_000)
    ious = [float(t) for t in page.locator("#ious li").all_text_contents()]
    assert ious and (ious[-1] >= 0.9 or len(ious) == 20)
    assert all(v < 0.9 for v in ious[:-1])  # it stopped at the first click that got there
    noc = page.text_content("#noc").split(" / ")
    assert noc[1] == (str(len(ious)) if ious[-1] >= 0.9 else "\u2013")
    page.close()


def test_traversal_and_oversized_upload_refused(browser, url, grabcut, tmp_path):
    page = browser.new_page()
    open_image(page, url, "124080")
    for path in ("/static/%2e%2e/%2e%2e/setup.cfg", "/api/images/..%2F..%2Fsetup.cfg/file"):
        status = page.evaluate("p => fetch(p).then(r => r.status)", path)
        assert status == 404, path
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(MAX_UPLOAD + 1))
    page.set_input_files("#upload", str(big))
    page.wait_for_selector("#error:not([hidden])")
    assert f"more than the {MAX_UPLOAD} allowed" in page.text_content("#error")
    # A real photo within the limit opens, without ground truth.
    page.set_input_files("#upload", str(grabcut / "data_GT" / "124080.jpg"))
    page.wait_for_function("() => document.querySelector('#image').selectedOptions[0]"
                           ".text === 'upload / 124080' && !document.body.dataset.busy")
    assert page.text_content("#iou") == "no ground truth"
    assert page.is_hidden("#error")
    page.close()


class FailsOnNegative:
    """GrabCut, except that a negative click breaks it."""

    def __call__(self, image, clicks, prev):
        if not clicks[-1].positive:
            raise RuntimeError("predictor broke")
        return GrabCut()(image, clicks, prev)


def test_predictor_error_shows_on_the_page(browser, grabcut):
    with live_server(make_app(Catalog([grabcut]), FailsOnNegative())) as base:
        page = browser.new_page()
        open_image(page, base, "124080")
        click_pixel(page, 150, 240, 1)
        box = page.locator("#canvas").bounding_box()
        page.mouse.click(box["x"] + 5, box["y"] + 5, button="right")
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error") == "predictor failed: RuntimeError: predictor broke"
        assert page.eval_on_selector("#canvas", "c => c.dataset.clicks") == "1"
        click_pixel(page, 160, 250, 2)  # the server goes on
        assert page.is_hidden("#error")
        page.close()
