"""Helpers of the app's tests: a live server on 127.0.0.1 and ground truth read from the files."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from iis_pipe.app.server import bind, server, url_of, warm_up


@contextmanager
def live_server(app):
    """Serve ``app`` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    warm_up()
    sock = bind("127.0.0.1", 0)
    srv = server(app)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app's server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


def grabcut_truth(root: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(object, ignore)`` ``(H, W) bool`` of a GrabCut mask file (255 object, 128 band)."""
    m = np.array(Image.open(root / "boundary_GT" / f"{key}.bmp"))
    m = m[..., 0] if m.ndim == 3 else m
    return m == 255, m == 128


def iou_of(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray) -> float:
    keep = ~ignore
    return float((gt & pred & keep).sum() / ((gt | pred) & keep).sum())
