"""The app's HTTP server: a static page and a JSON API over ``catalog`` and ``sessions``.

API (every error is ``{"error": reason}`` with a 4xx/5xx status, never a dead server):

=========================================  ==================================================
``GET  /api/info``                          predictor, limits, protocol threshold
``GET  /api/images``                        ``{"images": [{id, dataset, key, file}]}``
``GET  /api/images/{id}/file``              the image file the page draws
``POST /api/upload``                        body: a JPEG or PNG (at most ``max_upload`` bytes)
``POST /api/sessions``                      ``{"image": id, "object": 0}``: a new tab session
``GET  /api/sessions/{sid}``                its state (below)
``POST /api/sessions/{sid}/clicks``         ``{"y": int, "x": int, "positive": bool}``
``POST /api/sessions/{sid}/robot``          the standard robot's next click (ground truth only)
``POST /api/sessions/{sid}/undo``, ``reset``
``GET  /api/sessions/{sid}/mask.png``       the mask, ``(H, W)`` 0/255 gray PNG
``GET  /api/sessions/{sid}/clicks.json``    the clicks as a click file ``evaluate`` replays
=========================================  ==================================================

A state is ``{session, image, dataset, key, width, height, objects, object, clicks [[y, x,
positive]], ious, noc, hint, overlay (RGBA PNG data URL or null), predictor_ms}``.

Each tab has its own session (the page keeps its id in memory, not in a cookie). Predictor
calls run one at a time in a worker thread: GrabCut reseeds OpenCV's global RNG and a model's
weights are shared, and two cores gain nothing from running them at once.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from iis_pipe.app import sessions as ss
from iis_pipe.app.catalog import MIME, Catalog, Entry
from iis_pipe.clicking import Click
from iis_pipe.clicking.clickfile import ObjectClicks, click_rows, clicks_json
from iis_pipe.errors import BadInput, IISError
from iis_pipe.predictors import Predictor
from iis_pipe.pipelines.evaluate import Protocol

STATIC = Path(str(resources.files("iis_pipe.app") / "static"))
OVERLAY_RGB = (30, 144, 255)  # the mask's colour; the page sets its opacity
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
log = logging.getLogger("iis_pipe.app")


class ApiError(IISError):
    """A request the app refuses: the HTTP ``status`` and the ``reason`` shown."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class _Tab:
    session: ss.Session
    entry: Entry     # its image (kept: an upload may leave the catalog while a tab is open)
    objects: int     # the image's ground-truth objects
    object: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    predictor_ms: float | None = None


@dataclass(frozen=True)
class Limits:
    max_upload: int = 20 * 2**20    # bytes of an uploaded file
    max_pixels: int = 40_000_000    # pixels of an uploaded image
    max_sessions: int = 64          # tabs kept; the least recently used goes first
    max_session_bytes: int = 2**30  # their outputs kept for undo (1.6 MB a click at 854x480)
    max_body: int = 64 * 2**10      # bytes of a JSON request


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def overlay_png(mask: np.ndarray) -> bytes:
    """``(H, W) bool`` -> a 1-bit palette PNG: ``OVERLAY_RGB`` on the mask, transparent
    elsewhere, which the page draws as it is (about 1 ms and 2 kB for 854x480, against 25 ms
    and 10 kB for the same as RGBA)."""
    im = Image.frombytes("P", mask.shape[::-1], np.ascontiguousarray(mask, bool).view(np.uint8))
    im.putpalette([0, 0, 0, *OVERLAY_RGB])
    out = io.BytesIO()
    im.save(out, format="PNG", transparency=0, bits=1, compress_level=1)
    return out.getvalue()


def make_app(catalog: Catalog, predictor: Predictor, *, predictor_name: str = "grabcut",
             limits: Limits = Limits(), protocol: Protocol = Protocol(),
             allowed_hosts: list[str] | None = None) -> Starlette:
    """The ASGI app. ``protocol``: the threshold and the robot's click budget, evaluation's
    by default. ``allowed_hosts``: Host headers accepted (default: loopback names only,
    against DNS rebinding; ``["*"]`` for any)."""
    tabs: OrderedDict[str, _Tab] = OrderedDict()
    tabs_lock, predict_lock = threading.Lock(), threading.Lock()

    def keep(sid: str, t: _Tab) -> None:
        """Store a tab; the least recently used ones go past the count or the bytes allowed."""
        with tabs_lock:
            tabs[sid] = t
            tabs.move_to_end(sid)
            total = sum(p.nbytes for x in tabs.values() for p in x.session.probs)
            while len(tabs) > 1 and (len(tabs) > limits.max_sessions
                                     or total > limits.max_session_bytes):
                _, old = tabs.popitem(last=False)
                total -= sum(p.nbytes for p in old.session.probs)

    def tab(sid: str) -> _Tab:
        with tabs_lock:
            if sid not in tabs:
                raise ApiError(404, f"unknown session {sid!r} (expired or never started)")
            tabs.move_to_end(sid)
            return tabs[sid]

    def state(sid: str, t: _Tab) -> dict[str, Any]:
        s, entry = t.session, t.entry
        hint = ss.robot_click(s)
        h, w = s.shape
        overlay = None
        if s.probs:
            overlay = "data:image/png;base64," + base64.b64encode(
                overlay_png(ss.mask(s))).decode()
        return {"session": sid, "image": entry.id, "dataset": entry.dataset, "key": entry.key,
                "width": w, "height": h, "objects": t.objects,
                "object": t.object, "clicks": click_rows(s.clicks), "ious": list(s.ious),
                "noc": ss.noc(s), "hint": None if hint is None else click_rows([hint])[0],
                "overlay": overlay, "predictor_ms": t.predictor_ms}

    def picture(image_id: str):
        try:
            return catalog.get(image_id)
        except KeyError:
            raise ApiError(404, f"unknown image {image_id!r}") from None
        except BadInput as e:
            raise ApiError(422, f"cannot load image {image_id!r}: {e}") from None

    async def body(request: Request, limit: int) -> bytes:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limit:
            raise ApiError(413, f"request of {int(size)} bytes, more than the {limit} allowed")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise ApiError(413, f"request over the {limit} bytes allowed")
        return bytes(data)

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await body(request, limits.max_body)
        try:
            doc = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"malformed JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "expected a JSON object")
        return doc

    def integer(doc: dict, name: str, default: int | None = None) -> int:
        v = doc.get(name, default)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ApiError(400, f"{name!r} must be an integer, got {v!r}")
        return v

    # --- routes ---------------------------------------------------------------------------

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse({"predictor": predictor_name, "threshold": protocol.threshold,
                             "max_upload": limits.max_upload,
                             "max_clicks": protocol.max_clicks})

    async def images(request: Request) -> Response:
        return JSONResponse({"images": [{"id": e.id, "dataset": e.dataset, "key": e.key,
                                         "file": e.file} for e in catalog.entries()]})

    async def image_file(request: Request) -> Response:
        pic = await run_in_threadpool(picture, request.path_params["id"])
        return Response(pic.data, media_type=MIME[pic.ext],
                        headers={"Cache-Control": "private, max-age=3600"})

    async def upload(request: Request) -> Response:
        data = await body(request, limits.max_upload)
        name = Path(request.headers.get("x-filename", "upload")).name or "upload"
        try:
            e = await run_in_threadpool(catalog.upload, data, name, limits.max_pixels)
        except BadInput as err:
            raise ApiError(415, str(err)) from None
        return JSONResponse({"id": e.id, "dataset": e.dataset, "key": e.key, "file": e.file},
                            status_code=201)

    async def new_session(request: Request) -> Response:
        doc = await json_body(request)
        image_id = doc.get("image")
        if not isinstance(image_id, str):
            raise ApiError(400, "'image' must be an image id (a string)")
        obj = integer(doc, "object", 0)

        def make() -> tuple[str, _Tab]:
            pic = picture(image_id)
            n = pic.objects.shape[0]
            if n and not 0 <= obj < n or not n and obj != 0:
                raise ApiError(400, f"object {obj} out of range: the image has {n} objects")
            gt = pic.objects[obj] if n else None
            t = _Tab(ss.start(pic.image, gt, pic.ignore if n else None, protocol.threshold),
                     catalog.entry(image_id), n, obj)
            sid = secrets.token_urlsafe(12)
            keep(sid, t)
            return sid, t

        sid, t = await run_in_threadpool(make)
        return JSONResponse(await run_in_threadpool(state, sid, t), status_code=201)

    async def get_session(request: Request) -> Response:
        sid = request.path_params["sid"]
        t = tab(sid)
        return JSONResponse(await run_in_threadpool(state, sid, t))

    def apply(sid: str, t: _Tab, click: Click | None) -> dict[str, Any]:
        """Add ``click`` (None: the robot's) to the tab's session under its lock."""
        with t.lock:
            s = t.session
            if click is None:
                click = ss.robot_click(s)
                if click is None:
                    raise ApiError(409, "no ground truth for this image: the robot cannot click")
            try:
                ss.check_click(s, click)
            except ValueError as e:
                raise ApiError(400, str(e)) from None
            t0 = time.perf_counter()
            try:
                with predict_lock:
                    s = ss.add_click(s, predictor, click)
            except Exception as e:  # shown on the page; the session keeps its last state
                log.error("predictor failed on image %s: %s: %s", t.entry.file, type(e).__name__,
                          e)
                raise ApiError(500, f"predictor failed: {type(e).__name__}: {e}") from None
            t.session, t.predictor_ms = s, 1000 * (time.perf_counter() - t0)
            keep(sid, t)
            return state(sid, t)

    async def click(request: Request) -> Response:
        t = tab(request.path_params["sid"])
        doc = await json_body(request)
        y, x, pos = integer(doc, "y"), integer(doc, "x"), doc.get("positive", True)
        if not isinstance(pos, bool):
            raise ApiError(400, f"'positive' must be true or false, got {pos!r}")
        return JSONResponse(await run_in_threadpool(apply, request.path_params["sid"], t,
                                                    Click(y, x, pos)))

    async def robot(request: Request) -> Response:
        t = tab(request.path_params["sid"])
        return JSONResponse(await run_in_threadpool(apply, request.path_params["sid"], t, None))

    def edit(fn):
        async def endpoint(request: Request) -> Response:
            sid = request.path_params["sid"]
            t = tab(sid)

            def run() -> dict[str, Any]:
                with t.lock:
                    t.session, t.predictor_ms = fn(t.session), None
                    return state(sid, t)

            return JSONResponse(await run_in_threadpool(run))
        return endpoint

    async def mask_png(request: Request) -> Response:
        t = tab(request.path_params["sid"])
        m = ss.mask(t.session).astype(np.uint8) * 255
        data = cv2.imencode(".png", m)[1].tobytes()
        entry = t.entry
        return Response(data, media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{_safe(entry.key)}-mask.png"'})

    async def clicks_file(request: Request) -> Response:
        t = tab(request.path_params["sid"])
        entry = t.entry
        doc = clicks_json([ObjectClicks(entry.key, t.object, t.session.clicks, entry.dataset,
                                        entry.file, t.session.shape)])
        return Response(json.dumps(doc, indent=1) + "\n", media_type="application/json",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{_safe(entry.key)}-clicks.json"'})

    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"not found: {request.url.path}"}, status_code=404)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/images", images),
        Route("/api/images/{id}/file", image_file),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route("/api/sessions/{sid}", get_session),
        Route("/api/sessions/{sid}/clicks", click, methods=["POST"]),
        Route("/api/sessions/{sid}/robot", robot, methods=["POST"]),
        Route("/api/sessions/{sid}/undo", edit(ss.undo), methods=["POST"]),
        Route("/api/sessions/{sid}/reset", edit(ss.reset), methods=["POST"]),
        Route("/api/sessions/{sid}/mask.png", mask_png),
        Route("/api/sessions/{sid}/clicks.json", clicks_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = LOCAL_HOSTS if allowed_hosts is None else allowed_hosts
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware,
                                                           allowed_hosts=hosts)],
                     exception_handlers={ApiError: api_error, 404: not_found})


def _safe(name: str) -> str:
    """A download file name's stem: letters, digits, ``-_.`` only."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "image"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); ``OSError`` with the
    system's reason (e.g. the port in use)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # proto given: asyncio disables Nagle only on sockets that say TCP, and without that every
    # keep-alive answer (headers, then body) waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def warm_up() -> None:
    """Compile the robot's kernels now (numba), not on the first click."""
    from iis_pipe.clicking import standard

    gt = np.zeros((16, 16), bool)
    gt[4:9, 4:9] = True
    standard(gt, np.zeros_like(gt))


def server(app: Starlette, log_level: str = "warning"):
    """A ``uvicorn.Server`` for ``app``; run it with ``.run(sockets=[bind(...)])``."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False,
                                         lifespan="off"))
