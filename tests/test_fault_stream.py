"""Streams whose epoch can produce no sample stop with ``EmptyEpoch`` naming the shards, in both
epoch modes, in this process and in DataLoader workers; a worker's project error reaches the
loader as the same object."""

from __future__ import annotations

import io
import tarfile
import warnings

import pytest

from iis_pipe.errors import BadInput, EmptyEpoch
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.stream import StreamLoader, stream_config


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "s"
    prepare("toy", out, source_options={"count": 4}, workers=1, progress=False, shard_count=2)
    return out


def _tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _corrupt_copy(toy, path):
    """The toy shard with every record's meta.json replaced by garbage."""
    with tarfile.open(toy / "shard-000000.tar") as t:
        members = {m.name: (b"{not json" if m.name.endswith("meta.json")
                            else t.extractfile(m).read()) for m in t.getmembers()}
    return _tar(path, members)


def _shards(kind, toy, tmp_path):
    if kind == "empty tar":
        return _tar(tmp_path / "e.tar", {})
    if kind == "not a tar":
        p = tmp_path / "n.tar"
        p.write_bytes(b"this is not a tar file\n" * 100)
        return p
    if kind == "unrelated files":
        return _tar(tmp_path / "u.tar", {"notes.txt": b"hello", "data.csv": b"1,2,3\n"})
    return _corrupt_copy(toy, tmp_path / "c.tar")


def _epoch(shard, resampled, workers):
    knobs = dict(batch_size=2, crop_size=(32, 32), resampled=resampled)
    if resampled:
        knobs["samples_per_epoch"] = 4
    spec = [str(s) for s in shard] if isinstance(shard, list) else str(shard)
    loader = StreamLoader(stream_config(spec, **knobs), num_workers=workers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [b for b in loader]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("resampled", [False, True])
@pytest.mark.parametrize("kind", ["empty tar", "not a tar", "unrelated files",
                                  "every record corrupt"])
def test_epoch_without_samples_raises_naming_the_shards(kind, resampled, workers, toy, tmp_path):
    shard = _shards(kind, toy, tmp_path)
    with pytest.raises(EmptyEpoch) as info:
        _epoch(shard, resampled, workers)
    assert str(shard) in str(info.value) and "produced no sample" in str(info.value)
    assert info.value.shards == [str(shard)]
    if kind != "empty tar":
        assert "faults" in info.value.reason  # says what went wrong with the records


def test_an_epoch_with_samples_is_not_empty(toy, tmp_path):
    """The check counts the whole epoch: a batch of failures beside good ones is no error."""
    bad = _corrupt_copy(toy, tmp_path / "c.tar")
    batches = _epoch([str(bad), str(toy / "shard-000001.tar")], False, 0)
    assert sum(len(b["keys"]) for b in batches) == 2
    assert sum(len(b["errors"]) for b in batches) == 2


def test_a_resumed_epoch_end_is_no_empty_epoch(toy):
    """Resumed at the end of an epoch: nothing is left of it, and the next epoch follows."""
    loader = StreamLoader(stream_config(str(toy), batch_size=2, crop_size=(32, 32)))
    loader.load_state_dict({"epoch": 0, "batch": 2, "seed": 0, "samples": 4, "errors": 0})
    assert list(loader) == []
    assert sum(len(b["keys"]) for b in loader) == 4


@pytest.mark.timeout(120)
def test_strict_error_crosses_from_the_worker_as_itself(toy, tmp_path):
    bad = _corrupt_copy(toy, tmp_path / "c.tar")
    loader = StreamLoader(stream_config(str(bad), batch_size=2, crop_size=(32, 32), strict=True),
                          num_workers=1)
    with pytest.raises(BadInput) as info:
        list(loader)
    assert info.value.file == str(bad) and "record" in info.value.reason
    assert "Traceback" not in str(info.value)
