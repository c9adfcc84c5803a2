"""The app's HTTP API without a browser: each endpoint on real GrabCut images, the robot's play
equal to evaluation's protocol, an export that ``evaluate --clicks`` replays to the same IoUs,
and every bad input a 4xx with its reason (unknown image or session, out-of-range click,
malformed JSON, traversal URLs, oversized or foreign uploads, a failing predictor)."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from app_helpers import grabcut_truth, iou_of, live_server
from iis_pipe.cli.main import main
from iis_pipe.app import Catalog, Limits, make_app
from iis_pipe.predictors import GrabCut
from iis_pipe.pipelines.evaluate import Protocol, evaluate, run_object
from iis_pipe.pipelines.prepare import prepare

ROOT = Path(__file__).resolve().parents[1]
KEY = "124080"  # a GrabCut image whose first robot click already gives IoU > 0.8


class FailsOnSecondClick:
    def __call__(self, image, clicks, prev):
        if len(clicks) == 2:
            raise RuntimeError("predictor broke")
        return GrabCut()(image, clicks, prev)


@pytest.fixture(scope="module")
def catalog(grabcut_dir_module):
    return Catalog([grabcut_dir_module])


@pytest.fixture(scope="module")
def grabcut_dir_module():
    from conftest import real_set

    return real_set("GrabCut")


@pytest.fixture
def client(catalog):
    return TestClient(make_app(catalog, GrabCut(), limits=Limits(max_upload=300_000)),
                      base_url="http://127.0.0.1")


def image_id(client, key):
    return next(i["id"] for i in client.get("/api/images").json()["images"] if i["key"] == key)


def start(client, key=KEY, **extra):
    res = client.post("/api/sessions", json={"image": image_id(client, key), **extra})
    assert res.status_code == 201, res.text
    return res.json()


def mask_of(client, sid):
    res = client.get(f"/api/sessions/{sid}/mask.png")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    m = np.array(Image.open(io.BytesIO(res.content)))
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    return m == 255


def test_listing_and_image_files(client, grabcut_dir_module):
    assert client.get("/api/info").json()["predictor"] == "grabcut"
    listed = client.get("/api/images").json()["images"]
    files = sorted(p.name for p in (grabcut_dir_module / "data_GT").iterdir())
    assert sorted(i["file"] for i in listed) == files
    assert len({i["id"] for i in listed}) == len(files)
    res = client.get(f"/api/images/{image_id(client, KEY)}/file")
    assert res.headers["content-type"] == "image/jpeg"
    assert res.content == (grabcut_dir_module / "data_GT" / f"{KEY}.jpg").read_bytes()
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="canvas"' in page.text
    for static in ("app.js", "app.css"):
        assert client.get(f"/static/{static}").status_code == 200


def test_click_undo_reset(client, grabcut_dir_module):
    gt, ignore = grabcut_truth(grabcut_dir_module, KEY)
    s = start(client)
    assert (s["width"], s["height"], s["objects"]) == (gt.shape[1], gt.shape[0], 1)
    assert s["clicks"] == [] and s["overlay"] is None and not mask_of(client, s["session"]).any()
    y, x, pos = s["hint"]
    assert pos == 1 and gt[y, x]  # the robot's first click lies on the object
    sid = s["session"]
    one = client.post(f"/api/sessions/{sid}/clicks", json={"y": y, "x": x, "positive": True}).json()
    mask = mask_of(client, sid)
    assert one["clicks"] == [[y, x, 1]] and one["overlay"].startswith("data:image/png;base64,")
    assert one["ious"][0] == pytest.approx(iou_of(gt, mask, ignore)) and one["ious"][0] > 0.8
    assert one["noc"]["85"] == 1 and one["predictor_ms"] > 0
    hint = one["hint"]
    two = client.post(f"/api/sessions/{sid}/clicks",
                      json={"y": hint[0], "x": hint[1], "positive": bool(hint[2])}).json()
    assert len(two["ious"]) == 2
    back = client.post(f"/api/sessions/{sid}/undo").json()
    assert back["clicks"] == one["clicks"] and back["ious"] == one["ious"]
    assert np.array_equal(mask_of(client, sid), mask)
    # The undone click again: its previous output is the one it saw the first time.
    again = client.post(f"/api/sessions/{sid}/clicks",
                        json={"y": hint[0], "x": hint[1], "positive": bool(hint[2])}).json()
    assert again["ious"] == two["ious"]
    empty = client.post(f"/api/sessions/{sid}/reset").json()
    assert empty["clicks"] == [] and empty["ious"] == [] and not mask_of(client, sid).any()
    assert client.get(f"/api/sessions/{sid}").json()["clicks"] == []


def test_robot_plays_the_evaluation_protocol(client, grabcut_dir_module, tmp_path):
    key = "153093"  # needs several clicks
    gt, ignore = grabcut_truth(grabcut_dir_module, key)
    image = np.array(Image.open(grabcut_dir_module / "data_GT" / f"{key}.jpg").convert("RGB"))
    ious, clicks, _ = run_object(GrabCut(), image, gt, ignore, Protocol(max_clicks=6))
    sid = start(client, key)["session"]
    for _ in range(6):
        s = client.post(f"/api/sessions/{sid}/robot").json()
    assert s["clicks"] == [[c.y, c.x, int(c.positive)] for c in clicks]
    assert s["ious"] == pytest.approx(ious.tolist())
    # The export replays to the same IoUs through evaluate.
    res = client.get(f"/api/sessions/{sid}/clicks.json")
    assert res.headers["content-disposition"] == f'attachment; filename="{key}-clicks.json"'
    doc = res.json()
    assert doc["objects"][0]["size"] == list(gt.shape) and doc["objects"][0]["key"] == key
    path = tmp_path / "clicks.json"
    path.write_bytes(res.content)
    run = evaluate([grabcut_dir_module], tmp_path / "run", clicks=path, workers=1,
                   progress=False, protocol=Protocol(max_clicks=6))
    assert run.rows[0]["ious"] == pytest.approx(s["ious"])


def test_tabs_are_independent(client):
    a, b = start(client), start(client, "153093")
    assert a["session"] != b["session"]
    y, x, _ = a["hint"]
    client.post(f"/api/sessions/{a['session']}/clicks", json={"y": y, "x": x, "positive": True})
    assert client.get(f"/api/sessions/{b['session']}").json()["clicks"] == []
    assert len(client.get(f"/api/sessions/{a['session']}").json()["clicks"]) == 1


@pytest.mark.parametrize("body, status, message", [
    ({"y": 321, "x": 5}, 400, "outside the 321x481 image"),
    ({"y": 5, "x": -1}, 400, "outside the 321x481 image"),
    ({"y": 5.5, "x": 3}, 400, "'y' must be an integer"),
    ({"y": True, "x": 3}, 400, "'y' must be an integer"),
    ({"y": 5, "x": 3, "positive": "yes"}, 400, "'positive' must be true or false"),
    ("[1, 2]", 400, "expected a JSON object"),
    ("{oops", 400, "malformed JSON"),
])
def test_bad_clicks(client, body, status, message):
    sid = start(client)["session"]
    kw = {"content": body} if isinstance(body, str) else {"json": body}
    res = client.post(f"/api/sessions/{sid}/clicks", **kw)
    assert res.status_code == status and message in res.json()["error"]
    assert client.get(f"/api/sessions/{sid}").json()["clicks"] == []


def test_unknown_things(client):
    assert client.get("/api/images/999/file").status_code == 404
    res = client.post("/api/sessions", json={"image": "999"})
    assert res.status_code == 404 and "unknown image '999'" in res.json()["error"]
    assert client.post("/api/sessions", json={"image": 3}).status_code == 400
    res = client.post("/api/sessions", json={"image": image_id(client, KEY), "object": 1})
    assert res.status_code == 400 and "the image has 1 objects" in res.json()["error"]
    for path in ("/api/sessions/nope", "/api/sessions/nope/mask.png"):
        assert client.get(path).status_code == 404
    res = client.post("/api/sessions/nope/clicks", json={"y": 1, "x": 1})
    assert res.status_code == 404 and "unknown session" in res.json()["error"]
    assert client.get("/api/nothing").status_code == 404


def test_uploads(client, grabcut_dir_module):
    data = (grabcut_dir_module / "data_GT" / f"{KEY}.jpg").read_bytes()
    res = client.post("/api/upload", content=data, headers={"X-Filename": "../../mine.jpg"})
    assert res.status_code == 201 and res.json()["file"] == "mine.jpg"
    s = client.post("/api/sessions", json={"image": res.json()["id"]}).json()
    assert s["objects"] == 0 and s["hint"] is None
    assert client.get(f"/api/images/{s['image']}/file").content == data
    one = client.post(f"/api/sessions/{s['session']}/clicks", json={"y": 150, "x": 240}).json()
    assert one["ious"] == [] and mask_of(client, s["session"]).any()  # no ground truth, a mask
    res = client.post(f"/api/sessions/{s['session']}/robot")
    assert res.status_code == 409 and "no ground truth" in res.json()["error"]
    png = cv2.imencode(".png", np.zeros((40, 50, 3), np.uint8))[1].tobytes()
    assert client.post("/api/upload", content=png).status_code == 201
    # Over the size limit: refused from the header, and while streaming when it has none.
    res = client.post("/api/upload", content=os.urandom(300_001))
    assert res.status_code == 413 and "more than the 300000 allowed" in res.json()["error"]
    res = client.post("/api/upload", content=iter([b"\xff\xd8" + bytes(200_000)] * 2))
    assert res.status_code == 413
    res = client.post("/api/upload", content=b"GIF89a" + bytes(100))
    assert res.status_code == 415 and "not a JPEG or PNG" in res.json()["error"]
    res = client.post("/api/upload", content=data[: len(data) // 2])
    assert res.status_code == 415 and "corrupt or truncated JPEG" in res.json()["error"]


def test_upload_pixel_limit(catalog):
    client = TestClient(make_app(catalog, GrabCut(), limits=Limits(max_pixels=1000)),
                        base_url="http://127.0.0.1")
    png = cv2.imencode(".png", np.zeros((100, 100), np.uint8))[1].tobytes()  # 10 kpx, tiny file
    res = client.post("/api/upload", content=png)
    assert res.status_code == 415 and "100x100 pixels, more than the 1000" in res.json()["error"]


def test_predictor_error_is_a_message(catalog):
    client = TestClient(make_app(catalog, FailsOnSecondClick()), base_url="http://127.0.0.1")
    s = start(client)
    sid, (y, x, _) = s["session"], s["hint"]
    assert client.post(f"/api/sessions/{sid}/clicks", json={"y": y, "x": x}).status_code == 200
    res = client.post(f"/api/sessions/{sid}/clicks", json={"y": 3, "x": 3, "positive": False})
    assert res.status_code == 500
    assert res.json()["error"] == "predictor failed: RuntimeError: predictor broke"
    assert len(client.get(f"/api/sessions/{sid}").json()["clicks"]) == 1  # still usable


def test_foreign_host_header_refused(catalog):
    client = TestClient(make_app(catalog, GrabCut()), base_url="http://attacker.example")
    assert client.get("/api/images").status_code == 400


def test_traversal_urls_refused_over_real_http(catalog):
    with live_server(make_app(catalog, GrabCut())) as url:
        host, port = url.removeprefix("http://").split(":")
        for path in ("/static/../../setup.cfg", "/static/%2e%2e/%2e%2e/setup.cfg",
                     "/static/..%2f..%2fsetup.cfg", "/static//etc/passwd",
                     "/api/images/..%2F..%2Fsetup.cfg/file", "/../setup.cfg"):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", path)  # sent as written: http.client keeps dot segments
            res = conn.getresponse()
            body = res.read()
            assert res.status == 404, (path, res.status)
            assert b"[metadata]" not in body and b"root:" not in body
            conn.close()
        with urllib.request.urlopen(f"{url}/static/app.js", timeout=10) as res:
            assert res.status == 200


def test_shards_serve_the_same_images(grabcut_dir_module, tmp_path):
    folder = tmp_path / "two"
    for sub in ("data_GT", "boundary_GT"):
        (folder / sub).mkdir(parents=True)
        for f in (grabcut_dir_module / sub).glob(f"{KEY}.*"):
            (folder / sub / f.name).symlink_to(f)
    prepare(folder, tmp_path / "shards", workers=1, progress=False)
    gt, _ = grabcut_truth(grabcut_dir_module, KEY)
    client = TestClient(make_app(Catalog([tmp_path / "shards"]), GrabCut()),
                        base_url="http://127.0.0.1")
    (entry,) = client.get("/api/images").json()["images"]
    assert entry["key"] == KEY and entry["dataset"] == "shards"
    s = client.post("/api/sessions", json={"image": entry["id"]}).json()
    assert s["objects"] == 1 and gt[s["hint"][0], s["hint"][1]]
    img = Image.open(io.BytesIO(client.get(f"/api/images/{entry['id']}/file").content))
    assert img.size == (gt.shape[1], gt.shape[0])


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    cases = [(["app", str(tmp_path / "nowhere")], "no such folder or shard"),
             (["app", "--predictor", "nosuch"], "unknown predictor 'nosuch'"),
             (["app", "--predictor", str(tmp_path / "x.pt")], "checkpoint not found"),
             (["app", "--port", "70000"], "70000 is not in the range"),
             (["app", "--max-upload", "lots"], "is not a size")]
    for args, message in cases:
        res = runner.invoke(main, args)
        assert res.exit_code != 0 and message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    with live_server(make_app(Catalog([]), GrabCut())) as url:
        port = url.rsplit(":", 1)[1]
        res = runner.invoke(main, ["app", "--port", port])
        assert res.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in res.output


def test_cli_prints_the_url_and_warns_off_loopback(grabcut_dir_module):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        proc = subprocess.Popen([sys.executable, "-m", "iis_pipe.cli", "app", str(grabcut_dir_module),
                                 "--host", host, "--port", "0"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = [proc.stdout.readline() for _ in range(2)]
            assert lines[0].startswith("50 images; predictor grabcut"), lines
            url = lines[1].split()[1]
            assert url.startswith(f"http://{host}:")
            port = url.rsplit(":", 1)[1].rstrip("/")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=10) as r:
                assert json.load(r)["predictor"] == "grabcut"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert ("warning: listening on 0.0.0.0" in err) == warned, err
        assert "Traceback" not in err


def test_old_tabs_go_past_the_memory_allowed(catalog):
    # 321x481 float32 outputs are 0.62 MB a click: two clicks fit in 1.5 MB, three do not.
    client = TestClient(make_app(catalog, GrabCut(), limits=Limits(max_session_bytes=1_500_000)),
                        base_url="http://127.0.0.1")
    old, new = start(client), start(client, "153093")
    for s in (old, new):
        y, x, _ = s["hint"]
        assert client.post(f"/api/sessions/{s['session']}/clicks",
                           json={"y": y, "x": x}).status_code == 200
    assert client.get(f"/api/sessions/{old['session']}").status_code == 200
    y, x, _ = client.get(f"/api/sessions/{new['session']}").json()["hint"]
    client.post(f"/api/sessions/{new['session']}/clicks", json={"y": y, "x": x})
    assert client.get(f"/api/sessions/{old['session']}").status_code == 404
    assert len(client.get(f"/api/sessions/{new['session']}").json()["clicks"]) == 2


def test_a_model_checkpoint_serves_clicks(catalog, tmp_path):
    torch = pytest.importorskip("torch")
    from iis_pipe import models
    from iis_pipe.predictors import make_predictor

    torch.manual_seed(0)
    ckpt = models.save(models.create("hrnet18s-conv1s").eval(), tmp_path / "m.pt")
    client = TestClient(make_app(catalog, make_predictor(str(ckpt), max_size=96),
                                 predictor_name=str(ckpt)), base_url="http://127.0.0.1")
    assert client.get("/api/info").json()["predictor"] == str(ckpt)
    s = start(client)
    for k, (y, x, pos) in enumerate([(150, 240, True), (10, 10, False)], 1):
        res = client.post(f"/api/sessions/{s['session']}/clicks",
                          json={"y": y, "x": x, "positive": pos})
        assert res.status_code == 200 and len(res.json()["ious"]) == k
        assert mask_of(client, s["session"]).shape == (321, 481)


def test_a_tab_outlives_its_upload_in_the_catalog(grabcut_dir_module):
    client = TestClient(make_app(Catalog([], max_uploads=1), GrabCut()),
                        base_url="http://127.0.0.1")
    data = (grabcut_dir_module / "data_GT" / f"{KEY}.jpg").read_bytes()
    first = client.post("/api/upload", content=data).json()["id"]
    s = client.post("/api/sessions", json={"image": first}).json()
    client.post("/api/upload", content=data)  # the only upload kept now
    assert [i["id"] for i in client.get("/api/images").json()["images"]] != [first]
    res = client.post(f"/api/sessions/{s['session']}/clicks", json={"y": 150, "x": 240})
    assert res.status_code == 200 and res.json()["image"] == first
    assert client.get(f"/api/sessions/{s['session']}/clicks.json").status_code == 200


def test_an_image_that_does_not_load_is_a_message(grabcut_dir_module, tmp_path):
    for sub in ("data_GT", "boundary_GT"):
        (tmp_path / sub).mkdir()
    data = (grabcut_dir_module / "data_GT" / f"{KEY}.jpg").read_bytes()
    (tmp_path / "data_GT" / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "boundary_GT" / "cut.bmp").symlink_to(grabcut_dir_module / "boundary_GT"
                                                      / f"{KEY}.bmp")
    client = TestClient(make_app(Catalog([tmp_path]), GrabCut()), base_url="http://127.0.0.1")
    (entry,) = client.get("/api/images").json()["images"]
    res = client.post("/api/sessions", json={"image": entry["id"]})
    assert res.status_code == 422
    assert "cut.jpg: corrupt or truncated JPEG" in res.json()["error"]
    assert client.get(f"/api/images/{entry['id']}/file").status_code == 422
