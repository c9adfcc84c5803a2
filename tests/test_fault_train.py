"""``train`` and its output folder: an existing run is never silently overwritten or mixed with,
``--resume`` refuses changed settings and supersedes the log rows it redoes, an empty stream
is an error instead of a spin."""

from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.pipelines.train import TrainConfig, TrainError, train

TINY = dict(batch_size=2, crop_size=(64, 96), max_num_points=4, scale_range=(0.6, 0.9))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    prepare("toy", root / "train", source_options={"count": 12, "height": 96, "width": 128},
            workers=1, progress=False)
    prepare("toy", root / "other", source_options={"count": 12, "height": 96, "width": 128,
                                                    "seed": 5}, workers=1, progress=False)
    return root


def _cfg(toy, out, **kw):
    base = dict(shards=str(toy / "train"), out=str(out), model="timm:ghostnet_050",
                recipe="plain", stream=dict(TINY), steps=4, lr=2e-3, workers=0,
                checkpoint_every=2, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def _cli(toy, out, *extra):
    return CliRunner().invoke(main, ["train", str(toy / "train"), "-o", str(out), "-m",
                                     "timm:ghostnet_050", "--recipe", "plain", "--steps", "2",
                                     "--checkpoint-every", "1", "-w", "0", "--device", "cpu",
                                     "-q", "-k", "batch_size=2", "-k", "crop_size=[64,96]",
                                     *extra])


def _steps(out):
    return [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]


def test_a_run_folder_is_not_reused_without_resume_or_overwrite(toy, tmp_path):
    out = tmp_path / "run"
    assert _cli(toy, out).exit_code == 0
    before = (out / "last.pt").read_bytes()
    r = _cli(toy, out)
    assert r.exit_code == 1 and "not empty" in r.output and "--resume" in r.output, r.output
    assert (out / "last.pt").read_bytes() == before and _steps(out) == [1, 2]
    r = _cli(toy, out, "--steps", "1", "--overwrite")
    assert r.exit_code == 0, r.output
    assert _steps(out) == [1] and not (out / "ckpt-0000002.pt").exists()  # the old run is gone


def test_overwrite_decides_before_deleting(toy, tmp_path):
    out = tmp_path / "run"
    assert _cli(toy, out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    files = sorted(p.name for p in out.iterdir())
    r = _cli(toy, out, "--overwrite")
    assert r.exit_code == 1 and "notes.txt" in r.output and "nothing was deleted" in r.output
    assert sorted(p.name for p in out.iterdir()) == files


@pytest.mark.parametrize("change,named", [(dict(lr=0.1), "lr"),
                                          (dict(shards="other"), "shards"),
                                          (dict(stream=dict(TINY, batch_size=4)), "stream")])
def test_resume_refuses_other_settings_naming_them(toy, tmp_path, change, named):
    train(_cfg(toy, tmp_path / "r", steps=2), progress=False)
    if "shards" in change:
        change = dict(shards=str(toy / change["shards"]))
    with pytest.raises(TrainError, match=f"other settings than the run \\({named}: "):
        train(_cfg(toy, tmp_path / "r", steps=4, **change), resume=True, progress=False)
    ok = train(_cfg(toy, tmp_path / "r", steps=3, workers=0, device="cpu"), resume=True,
               progress=False)
    assert ok["steps"] == 3  # steps, workers, device may change


def test_resume_supersedes_the_log_rows_it_redoes(toy, tmp_path):
    whole = train(_cfg(toy, tmp_path / "a"), progress=False)
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b)
    # As if killed after step 3, with step 2's checkpoint the last one written, mid-row
    shutil.copy(b / "ckpt-0000002.pt", b / "last.pt")
    rows = (b / "log.jsonl").read_text().splitlines(keepends=True)[:3]
    (b / "log.jsonl").write_text("".join(rows) + '{"step": 4, "lo')
    rest = train(_cfg(toy, b), resume=True, progress=False)
    log = [json.loads(x) for x in (b / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert np.allclose([r["loss"] for r in log[2:]], whole["losses"][2:], rtol=1e-4)
    assert np.allclose(rest["losses"], whole["losses"][2:], rtol=1e-4)


@pytest.mark.timeout(120)
def test_train_on_an_empty_shard_stops_with_a_message(tmp_path):
    empty = tmp_path / "e.tar"
    tarfile.open(empty, "w").close()
    for recipe in ("ritm", "plain"):
        r = CliRunner().invoke(main, ["train", str(empty), "-o", str(tmp_path / recipe), "-m",
                                      "timm:ghostnet_050", "--recipe", recipe, "--steps", "2",
                                      "-w", "0", "--device", "cpu", "-q"])
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
        assert str(empty) in r.output and "produced no sample" in r.output
