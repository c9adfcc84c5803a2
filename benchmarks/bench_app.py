"""The app's click latency: real HTTP round trips to ``iis-pipe app`` on 127.0.0.1.

    .venv/bin/python benchmarks/bench_app.py          (IIS_DATA: folder holding DAVIS/)

Starts ``python -m cli app DAVIS`` (the classical predictor, its defaults) as its own process
pinned to one core with library threads 1, opens a session per image on ``--images`` evenly
spaced DAVIS frames (854x480) and posts ``--clicks`` clicks on each, every one at the robot's
hint of the previous answer, as a person following the hint would, over one keep-alive
connection as a browser does. A round trip is the POST until the whole JSON answer (state, the
mask overlay as PNG) is read; ``predictor`` is the server's own measure of the predictor call
(and the IoU). Prints the median and 90th percentile of each and their difference, the
server's share. The exit status does not depend on the 200 ms target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from iis_pipe.data_root import data_root

ROOT = Path(__file__).resolve().parents[1]


def start_server(source: Path, core: int | None) -> tuple[subprocess.Popen, str, int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "iis_pipe.cli", "app", str(source), "--port", "0"]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("open http://"):
            host, port = line.split()[1].removeprefix("http://").rstrip("/").rsplit(":", 1)
            return proc, host, int(port)
    raise RuntimeError(f"the app did not start (exit status {proc.wait()})")


def call(conn: http.client.HTTPConnection, method: str, path: str, body=None) -> dict:
    conn.request(method, path, None if body is None else json.dumps(body),
                 {"Content-Type": "application/json"})
    res = conn.getresponse()
    doc = json.loads(res.read())
    if res.status >= 400:
        raise RuntimeError(f"{method} {path}: {res.status} {doc.get('error')}")
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=data_root(), help="folder holding DAVIS/")
    ap.add_argument("--images", type=int, default=10, help="DAVIS frames, evenly spaced")
    ap.add_argument("--clicks", type=int, default=5, help="clicks per image")
    ap.add_argument("--core", type=int, default=0, help="core the server is pinned to (-1: none)")
    a = ap.parse_args(argv)
    davis = a.data / "DAVIS"
    if not davis.is_dir():
        print(f"{davis}: not found (set IIS_DATA or --data)", file=sys.stderr)
        return 2
    proc, host, port = start_server(davis, None if a.core < 0 else a.core)
    trips, predictor = [], []
    try:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        images = call(conn, "GET", "/api/images")["images"]
        picked = [images[i] for i in np.linspace(0, len(images) - 1, a.images).round().astype(int)]
        # One click first, untimed: the server's first request (imports, caches) is not a click's.
        warm = call(conn, "POST", "/api/sessions", {"image": picked[0]["id"]})
        y, x, pos = warm["hint"]
        call(conn, "POST", f"/api/sessions/{warm['session']}/clicks", {"y": y, "x": x})
        for im in picked:
            s = call(conn, "POST", "/api/sessions", {"image": im["id"]})
            if (s["width"], s["height"]) != (854, 480):
                print(f"note: {im['key']} is {s['width']}x{s['height']}", file=sys.stderr)
            for _ in range(a.clicks):
                y, x, pos = s["hint"]
                t0 = time.perf_counter()
                s = call(conn, "POST", f"/api/sessions/{s['session']}/clicks",
                         {"y": y, "x": x, "positive": bool(pos)})
                trips.append(1000 * (time.perf_counter() - t0))
                predictor.append(s["predictor_ms"])
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    trip, pred = np.array(trips), np.array(predictor)
    print(f"iis-pipe app, classical predictor (grabcut defaults), {len(trips)} clicks on "
          f"{len(picked)} DAVIS images (854x480), server on "
          f"{'core ' + str(a.core) if a.core >= 0 else 'any core'}")
    print(f"{'ms per click':<28}{'median':>8}{'p90':>8}")
    print(f"{'HTTP round trip':<28}{np.median(trip):8.1f}{np.percentile(trip, 90):8.1f}")
    print(f"{'  predictor (server side)':<28}{np.median(pred):8.1f}{np.percentile(pred, 90):8.1f}")
    print(f"{'  the rest (per click)':<28}{np.median(trip - pred):8.1f}"
          f"{np.percentile(trip - pred, 90):8.1f}")
    print(f"target: median round trip < 200 ms: {'met' if np.median(trip) < 200 else 'NOT met'}"
          f" ({np.median(trip) / 200:.2f}x of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
