"""Remote shards over a network that misbehaves: an HTTP server of our own on 127.0.0.1 that
drops every connection after K bytes and stalls once; a server that is down; a 404; a failing
``pipe:`` command. The stream must lose and repeat nothing, count the reopenings, and end in
the documented skip (counted in ``errors``) or, when strict, a ``BadInput`` naming the URL."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from iis_pipe.errors import BadInput
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.remote import ResumableReader, RetryPolicy
from iis_pipe.shards.tar import iter_records
from iis_pipe.stream import StreamLoader, stream_config

FAST = dict(read_retries=3, read_backoff=0.01, read_stall=0.5)


class FlakyServer:
    """Serves the files of ``root`` with range requests; every answer ends (the socket is
    shut) after ``drop_every`` bytes of body; the ``stall_at``-th answer first waits
    ``stall_for`` seconds before its body. ``requests`` lists the (path, start) asked for."""

    def __init__(self, root: Path, drop_every: int | None = None, stall_at: int | None = None,
                 stall_for: float = 2.0):
        self.root, self.drop_every = root, drop_every
        self.stall_at, self.stall_for = stall_at, stall_for
        self.requests: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                with server.lock:
                    server.requests.append((self.path, start))
                    n = len(server.requests)
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                if n == server.stall_at:
                    time.sleep(server.stall_for)
                body = data[start:]
                if server.drop_every is not None:
                    body = body[:server.drop_every]
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                    if server.drop_every is not None and len(body) < len(data) - start:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _dead_url(name: str) -> str:
    """A URL on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


@pytest.fixture(scope="module")
def shards(tmp_path_factory, ) -> Path:
    """Real GrabCut records in 3 shards (skipped without the data)."""
    from conftest import real_set

    out = tmp_path_factory.mktemp("http") / "gc"
    prepare(real_set("GrabCut"), out, workers=1, progress=False, shard_count=17)
    return out


def _names(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("shard-*.tar"))


def _all_keys(root: Path) -> list[str]:
    return sorted(k for n in _names(root) for k, _ in iter_records(root / n))


@pytest.mark.realdata
def test_reader_resumes_at_the_byte_it_stopped(shards):
    name = _names(shards)[0]
    want = (shards / name).read_bytes()
    k = 100_003  # not a multiple of any buffer size
    with FlakyServer(shards, drop_every=k, stall_at=3, stall_for=1.0) as srv:
        events = []
        with ResumableReader(srv.url(name), RetryPolicy(retries=2, backoff=0.01, stall=0.3),
                             lambda *e: events.append(e)) as r:
            got = b"".join(iter(lambda: r.read(65536), b""))
    assert got == want
    drops = -(-len(want) // k) - 1
    assert len(events) >= drops + 1  # every drop and the stall
    assert any("stalled" in reason for _, _, reason in events)
    starts = [s for _, s in srv.requests]
    assert starts[0] == 0 and all(s % k == 0 for s in starts)  # asked from where it stopped
    assert sorted(set(starts)) == list(range(0, len(want), k))


@pytest.mark.realdata
def test_epoch_over_two_workers_is_exactly_once_through_drops_and_a_stall(shards):
    names = _names(shards)
    with FlakyServer(shards, drop_every=250_000, stall_at=4, stall_for=1.5) as srv:
        loader = StreamLoader(stream_config([srv.url(n) for n in names], batch_size=4,
                                            crop_size=(96, 96), **FAST), num_workers=2)
        keys = [k for b in loader for k in b["keys"]]
    assert sorted(keys) == _all_keys(shards)  # every record once, none repeated
    assert loader.errors == []
    assert len(loader.retries) >= 2 * len(names)  # both workers met the drops of every shard
    assert any("stalled" in r for _, _, r in loader.retries)
    assert loader.state_dict()["retries"] == len(loader.retries)
    # the same batches as from the files themselves
    local = StreamLoader(stream_config([str(shards / n) for n in names], batch_size=4,
                                       crop_size=(96, 96)), num_workers=0)
    assert [k for b in local for k in b["keys"]] == keys


@pytest.mark.realdata
def test_a_server_that_stays_down_is_skipped_and_counted_or_raised_when_strict(shards):
    names = _names(shards)
    dead = _dead_url(names[1])
    with FlakyServer(shards) as srv:
        urls = [srv.url(names[0]), dead, srv.url(names[2])]
        loader = StreamLoader(stream_config(urls, batch_size=4, crop_size=(96, 96),
                                            shuffle_shards=False, **FAST), num_workers=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = [k for b in loader for k in b["keys"]]
        want = sorted(k for n in (names[0], names[2]) for k, _ in iter_records(shards / n))
        assert sorted(keys) == want
        assert [(e[0]) for e in loader.errors] == [dead]
        assert "after 3 retries" in loader.errors[0][2]
        assert "cannot connect" in loader.errors[0][2]
        strict = StreamLoader(stream_config(urls, batch_size=4, crop_size=(96, 96),
                                            shuffle_shards=False, strict=True, **FAST))
        with pytest.raises(BadInput, match=dead.replace(".", r"\.")) as info:
            for _ in strict:
                pass
        assert "gave up" in info.value.reason


@pytest.mark.realdata
def test_a_404_is_skipped_at_once_or_raised_naming_the_url(shards):
    names = _names(shards)
    with FlakyServer(shards) as srv:
        missing = srv.url("shard-999999.tar")
        loader = StreamLoader(stream_config([srv.url(names[0]), missing], batch_size=4,
                                            crop_size=(96, 96), shuffle_shards=False, **FAST))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = [k for b in loader for k in b["keys"]]
        assert sorted(keys) == sorted(k for k, _ in iter_records(shards / names[0]))
        assert loader.errors[0][0] == missing and "HTTP 404" in loader.errors[0][2]
        assert loader.retries == []  # a 404 does not heal: no retry
        with pytest.raises(BadInput, match="404"):
            for _ in StreamLoader(stream_config([missing], strict=True, **FAST)):
                pass


def test_a_failing_pipe_command_is_a_bad_input_not_an_oserror():
    loader = StreamLoader(stream_config(["pipe:exit 7"], strict=True))
    with pytest.raises(BadInput, match="pipe:exit 7"):
        for _ in loader:
            pass
