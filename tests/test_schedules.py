"""Learning-rate schedules against their formulas, exact resume of a scheduled run, validation
during training and the best checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from iis_pipe import models
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.pipelines.train import TrainConfig, train
from iis_pipe.training.schedules import Schedule, check_state, factor, state, steps_per_epoch

TINY = dict(batch_size=4, crop_size=(64, 96), max_num_points=4, scale_range=(0.6, 0.9))


def test_ritm_multistep_in_epochs_of_30000_samples():
    # RITM: batch 28, 30000 samples an epoch -> 1072 steps; lr x0.1 from epoch 200, x0.01 from 220
    per = steps_per_epoch(30000, 28)
    assert per == 1072
    s = Schedule("multistep", total_steps=230 * per, steps_per_epoch=per, milestones=(200, 220))
    assert factor(s, 0) == 1.0
    assert factor(s, 200 * per - 1) == 1.0           # last step of epoch 199
    assert factor(s, 200 * per) == pytest.approx(0.1)
    assert factor(s, 220 * per - 1) == pytest.approx(0.1)
    assert factor(s, 220 * per) == pytest.approx(0.01)
    assert factor(s, 230 * per - 1) == pytest.approx(0.01)


def test_cosine_with_linear_warmup():
    s = Schedule("cosine", total_steps=110, warmup_steps=10, min_factor=0.1)
    assert factor(s, 0) == pytest.approx(0.1 * 1.0)          # (0 + 1) / 10 of cosine(p=0) = 1
    assert factor(s, 4) == pytest.approx(0.5)
    assert factor(s, 9) == pytest.approx(1.0)
    assert factor(s, 10) == pytest.approx(1.0)               # p = 0
    assert factor(s, 60) == pytest.approx(0.1 + 0.9 * 0.5)   # p = 1/2
    assert factor(s, 35) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert factor(s, 110) == pytest.approx(0.1)              # p = 1
    assert factor(Schedule("constant", warmup_steps=4), 1) == pytest.approx(0.5)
    assert factor(Schedule("constant"), 10 ** 6) == 1.0


def test_bad_settings_and_resume_checks():
    with pytest.raises(ValueError, match="schedule must be"):
        Schedule("poly")
    with pytest.raises(ValueError, match="warmup_steps"):
        Schedule("cosine", total_steps=10, warmup_steps=10)
    s = Schedule("cosine", total_steps=100, warmup_steps=5)
    check_state(s, state(s, 40), "last.pt")
    with pytest.raises(ValueError, match="last.pt.*total_steps: checkpoint 100 vs now 200"):
        check_state(Schedule("cosine", total_steps=200, warmup_steps=5), state(s, 40), "last.pt")
    m = Schedule("multistep", total_steps=10)
    check_state(Schedule("multistep", total_steps=20), state(m, 5), "x")  # may run longer
    with pytest.raises(ValueError, match="gamma"):
        check_state(Schedule("multistep", total_steps=10, gamma=0.5), state(m, 5), "x")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny models on a shared machine: a second OpenMP thread only spins (30x slower steps
    # measured at load 12 on 2 cores)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    prepare("toy", root / "train", source_options={"count": 32, "height": 96, "width": 128},
            workers=1, progress=False)
    prepare("toy", root / "held", source_options={"count": 6, "height": 96, "width": 128,
                                                   "seed": 99}, workers=1, progress=False)
    return root


def _cfg(toy, out, **kw):
    base = dict(shards=str(toy / "train"), out=str(out), model="timm:ghostnet_050",
                recipe="plain", stream=dict(TINY), steps=6, lr=2e-3, backbone_lr_mult=0.5,
                workers=0, checkpoint_every=3, seed=1, schedule="cosine", warmup_steps=2,
                min_lr_factor=0.2, max_num_next_clicks=1, epoch_samples=16)
    base.update(kw)
    return TrainConfig(**base)


def _log(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_scheduled_run_resumes_exactly(toy, tmp_path):
    whole = train(_cfg(toy, tmp_path / "a"), progress=False)
    # a 3-step run would be another cosine (its length is 3), so the first half is the 6-step
    # run's own checkpoint at step 3
    part = tmp_path / "b"
    part.mkdir()
    ckpt = models.read_checkpoint(tmp_path / "a" / "ckpt-0000003.pt")
    torch.save(ckpt, part / "last.pt")
    rest = train(_cfg(toy, part), resume=True, progress=False)
    assert rest["steps"] == 6
    assert np.array_equal(whole["losses"][3:], rest["losses"])  # bit for bit, same rates
    lrs = [r["lr"] for r in _log(tmp_path / "a" / "log.jsonl")]
    s = Schedule("cosine", total_steps=6, steps_per_epoch=1, warmup_steps=2, min_factor=0.2)
    assert np.allclose(lrs, [2e-3 * factor(s, k) for k in range(6)])
    assert [r["lr"] for r in _log(part / "log.jsonl")] == lrs[3:]
    assert ckpt["schedule"]["next_step"] == 3
    assert ckpt["schedule"]["next_factor"] == pytest.approx(factor(s, 3))
    with pytest.raises(ValueError, match="another schedule"):
        train(_cfg(toy, part, steps=9), resume=True, progress=False)


def test_epochs_set_the_length_and_milestones(toy, tmp_path):
    # 16 samples an epoch at batch 4: 4 steps; 1.5 epochs -> 6 steps; lr x0.1 from epoch 1
    res = train(_cfg(toy, tmp_path / "e", schedule="multistep", epochs=1.5, epoch_samples=16,
                     milestones=(1,), warmup_steps=0, steps=1000), progress=False)
    assert res["steps"] == 6
    lrs = [r["lr"] for r in _log(tmp_path / "e" / "log.jsonl")]
    assert np.allclose(lrs, [2e-3] * 4 + [2e-4] * 2)


def test_validation_keeps_the_best_checkpoint(toy, tmp_path):
    out = tmp_path / "v"
    res = train(_cfg(toy, out, steps=6, val=(str(toy / "held"),), val_limit=2, val_every=2,
                     val_max_clicks=5, val_max_size=128, best_metric="mIoU@1", lr=6e-3,
                     checkpoint_every=2),
                progress=False)
    vals = [r for r in _log(out / "log.jsonl") if "val" in r]
    assert [r["step"] for r in vals] == [2, 4, 6]
    assert all(r["val_s"] > 0 and set(r["val"]) == {"held", "mean"} for r in vals)
    scores = [r["val"]["mean"]["mIoU@1"] for r in vals]
    best_step = vals[int(np.argmax(scores))]["step"]  # first of equal maxima
    best = models.read_checkpoint(out / "best.pt")
    assert best["step"] == best_step == res["best"]["step"]
    assert best["best"] == {"metric": "mIoU@1", "value": max(scores), "step": best_step}
    # best.pt holds that step's weights: the checkpoint of the same step agrees
    same = models.read_checkpoint(out / f"ckpt-{best_step:07d}.pt")
    for k, v in same["state_dict"].items():
        assert torch.equal(v, best["state_dict"][k])
    assert res["validation_seconds"] == pytest.approx(sum(r["val_s"] for r in vals))
    with pytest.raises(ValueError, match="best metric"):
        train(_cfg(toy, tmp_path / "w", val=(str(toy / "held"),), best_metric="NoC@99"),
              progress=False)
