"""Iterative training of an IIS model from record shards (RITM's scheme).

Per step: draw 0..``max_num_next_clicks`` extra rounds; in each, without gradients and in eval
mode, predict, add one click per sample from the errors (``training.iterative``) and feed the
prediction back as the previous mask; then one step with gradients. Adam with a lower learning
rate for the backbone, bf16 autocast on GPU, DDP under ``torchrun`` (gloo on CPU), checkpoints
every N steps that carry the model, the optimizer and the stream's position, and a JSON-lines
log of loss, learning rate and data-wait / compute / click time per step.

A learning-rate schedule (``training.schedules``: constant, RITM's MultiStepLR in epochs of
``epoch_samples`` samples, cosine with linear warm-up) sets every group's rate before each step;
its settings and step are in the checkpoint, so a resumed run continues on the same rates.
With ``val`` sources, every ``val_every`` steps (and at the end) the standard click protocol
runs on the first ``val_limit`` images of each (``pipelines.validate``); the log gets a
``{"step", "val", "val_s"}`` line (validation time apart from the steps' times) and ``best.pt``
holds the checkpoint with the best ``best_metric`` (mean over the sources).

``train`` composes ``setup``, ``resume_run``, ``click_round_step`` (one step: the part to edit
for another training scheme) and ``checkpoint``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from iis_pipe import models, outdir
from iis_pipe.atomic import atomic_path, atomic_write
from iis_pipe.clicking.encode import encode_clicks, encode_clicks_torch
from iis_pipe.errors import IISError
from iis_pipe.plain import to_plain
from iis_pipe.training import schedules
from iis_pipe.training.iterative import add_error_clicks
from iis_pipe.training.losses import masked_bce, normalized_focal_loss
from iis_pipe.stream.loader import StreamLoader, stream_config
from iis_pipe.stream.presets import PRESETS

LAST = "last.pt"
BEST = "best.pt"
LOG = "log.jsonl"
# What a run writes: --overwrite deletes these and refuses a folder holding anything else.
OWNED = (LAST + "*", BEST + "*", "ckpt-*.pt*", LOG + "*")
# Settings a resumed run may change: they decide neither the batches nor the updates. Any
# other change is refused, naming it (a new lr would be recorded but not reach the optimizer,
# other shards would continue from the old stream position).
RESUME_MAY_CHANGE = ("steps", "workers", "device", "checkpoint_every", "out")


class TrainError(IISError):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclass
class TrainConfig:
    shards: Any
    out: str
    model: str = "hrnet18s-conv1s"
    model_kwargs: dict = field(default_factory=dict)
    init_checkpoint: str | None = None   # local weights to start from (config must match)
    recipe: str = "ritm"                 # a name in iis_pipe.stream.PRESETS ("ritm", "plain")
    stream: dict = field(default_factory=dict)  # stream keywords on top of the recipe
    steps: int = 1000
    lr: float = 5e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 0.0
    max_num_next_clicks: int = 3
    prev_mask_drop_prob: float = 0.0
    focal_alpha: float = 0.5
    focal_gamma: float = 2.0
    bce_weight: float = 0.0              # auxiliary BCE on the same logits
    maps_mode: str = "disk"
    maps_radius: float = 5.0
    amp: str = "auto"                    # bf16 autocast: "auto" (on CUDA), "bf16" (any
                                         # device, CPU included), "off"
    device: str = "auto"
    workers: int = 2
    checkpoint_every: int = 500
    seed: int = 0
    # learning-rate schedule (training.schedules); epochs are epoch_samples samples (default:
    # the stream's samples_per_epoch), and epochs, when given, sets the run's length
    schedule: str = "constant"           # "constant", "multistep" (RITM), "cosine"
    epoch_samples: int | None = None     # RITM: 30000
    epochs: float | None = None          # overrides steps: ceil(epochs * steps per epoch)
    milestones: tuple = (200, 220)       # multistep, in epochs (RITM: of 230)
    gamma: float = 0.1
    warmup_steps: int = 0
    min_lr_factor: float = 0.0           # cosine's floor, a fraction of the base rates
    # validation (pipelines.validate): sources, images of each, period, best.pt's metric
    val: tuple = ()
    val_limit: int | None = 20
    val_every: int = 0                   # steps; 0: at the end only (or val_every_epochs)
    val_every_epochs: float | None = None
    val_max_clicks: int = 20
    val_max_size: int = 480
    best_metric: str = "NoC@90"


def _autocast(amp: str | bool, device: torch.device) -> bool:
    """Whether forward passes run under bf16 autocast (``True``/``False``: "auto"/"off", the
    values of checkpoints written before the setting had three)."""
    amp = {True: "auto", False: "off"}.get(amp, amp)
    if amp not in ("auto", "bf16", "off"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {amp!r}")
    return amp == "bf16" or (amp == "auto" and device.type == "cuda")


def _stream(cfg: TrainConfig):
    if cfg.recipe not in PRESETS:
        raise ValueError(f"recipe must be one of {sorted(PRESETS)}, not {cfg.recipe!r}")
    knobs = {**PRESETS[cfg.recipe], "seed": cfg.seed, "image_dtype": "uint8", **cfg.stream}
    knobs.setdefault("resampled", True)  # DDP needs equal batch counts per rank
    if cfg.epoch_samples is not None:  # the stream's epoch is the schedule's
        knobs["samples_per_epoch"] = cfg.epoch_samples
    knobs.setdefault("samples_per_epoch", 100 * knobs.get("batch_size", 8))
    return stream_config(cfg.shards, **knobs)


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith(("backbone.", "vit.")) else rest).append(p)
    return torch.optim.Adam([{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_mult},
                             {"params": rest, "lr": cfg.lr}],
                            lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg.weight_decay)


def _atomic_save(model, path: Path, **extra) -> None:
    with atomic_path(path) as tmp:
        models.save(model, tmp, **extra)


class Run(NamedTuple):
    """One training run as ``setup`` makes it: the module checkpoints save, its optimizer and
    stream, and where and how it runs."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loader: StreamLoader
    device: torch.device
    rank: int
    distributed: bool
    out: Path
    schedule: schedules.Schedule
    base_lrs: list[float]        # each optimizer group's rate before the schedule's factor


def setup(cfg: TrainConfig) -> Run:
    """Process group (under ``torchrun``), device, output folder, seed, model, optimizer and
    stream of a fresh run."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = _device(cfg.device)
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    model = models.create(cfg.model, checkpoint=cfg.init_checkpoint, **cfg.model_kwargs)
    model.to(device)
    optimizer = _optimizer(model, cfg)
    stream = _stream(cfg)
    loader = StreamLoader(stream, num_workers=cfg.workers)
    world = dist.get_world_size() if distributed else 1
    return Run(model, optimizer, loader, device, rank, distributed, out,
               make_schedule(cfg, stream.batch_size * world, stream.samples_per_epoch),
               [g["lr"] for g in optimizer.param_groups])


def make_schedule(cfg: TrainConfig, global_batch: int, stream_epoch: int
                  ) -> schedules.Schedule:
    """The run's schedule: epochs of ``epoch_samples`` (else the stream's epoch) samples at
    ``global_batch`` samples per step; ``epochs`` (when set) gives the run's length."""
    per_epoch = schedules.steps_per_epoch(cfg.epoch_samples or stream_epoch, global_batch)
    return schedules.Schedule(cfg.schedule, total_steps(cfg, per_epoch), per_epoch,
                              tuple(cfg.milestones), cfg.gamma, cfg.warmup_steps,
                              cfg.min_lr_factor)


def total_steps(cfg: TrainConfig, per_epoch: int) -> int:
    """The run's length in steps: ``ceil(epochs * per_epoch)`` when ``epochs`` is set."""
    return cfg.steps if cfg.epochs is None else max(1, int(np.ceil(cfg.epochs * per_epoch)))


def resume_checkpoint(cfg: TrainConfig) -> dict[str, Any]:
    """``out/last.pt`` of the run ``cfg`` resumes, after checking that ``cfg`` changes only
    ``RESUME_MAY_CHANGE`` settings (``TrainError`` naming the others)."""
    ckpt_path = Path(cfg.out) / LAST
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path}: nothing to resume")
    ckpt = models.read_checkpoint(ckpt_path)
    before, now = ckpt.get("train", {}), to_plain(dataclasses.asdict(cfg))
    # a setting newer than the checkpoint had its default there
    defaults = to_plain({f.name: f.default for f in dataclasses.fields(TrainConfig)
                         if f.default is not dataclasses.MISSING})
    changed = sorted(k for k in set(before) | set(now) if k not in RESUME_MAY_CHANGE
                     and before.get(k, defaults.get(k)) != now.get(k))
    if changed:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise TrainError(f"{ckpt_path}: --resume with other settings than the run ({shown}); "
                         f"only {', '.join(RESUME_MAY_CHANGE)} may change: use the same settings, "
                         "or start a new run (another -o, or --overwrite)")
    return ckpt


def truncate_log(path: Path, step: int) -> None:
    """Keep the rows of ``log.jsonl`` up to ``step``: a resumed run redoes the steps after its
    checkpoint, and their rows from the interrupted run are superseded (a row cut short by the
    kill goes too)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if line.endswith(b"\n") and row.get("step", 0) <= step:
            kept.append(line)
    atomic_write(path, b"".join(kept))


def resume_run(run: Run, ckpt: dict[str, Any] | None = None) -> int:
    """Load model, optimizer and stream position from ``ckpt`` (default: ``out/last.pt``);
    returns its step."""
    if ckpt is None:
        ckpt_path = run.out / LAST
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"{ckpt_path}: nothing to resume")
        ckpt = models.read_checkpoint(ckpt_path)
    run.model.load_state_dict(ckpt["state_dict"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.loader.load_state_dict(ckpt["stream"])
    schedules.check_state(run.schedule, ckpt.get("schedule"), str(run.out / LAST))
    return int(ckpt["step"])


def click_maps(clicks: torch.Tensor, shape: tuple[int, int], cfg: TrainConfig) -> torch.Tensor:
    """``(B, 2, H, W)`` maps of ``(B, 2N, 3)`` clicks, on the clicks' device."""
    if clicks.device.type == "cpu":  # numba touches only the pixels near clicks
        return torch.from_numpy(encode_clicks(clicks.numpy(), shape, mode=cfg.maps_mode,
                                              radius=cfg.maps_radius))
    return encode_clicks_torch(clicks, shape, mode=cfg.maps_mode, radius=cfg.maps_radius)


class Step(NamedTuple):
    loss: torch.Tensor     # the step's scalar loss (after backward and the optimizer step)
    rounds: int            # click rounds simulated before it
    click_seconds: float   # time spent adding clicks in those rounds


def click_round_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     batch: dict[str, Any], cfg: TrainConfig, device: torch.device, amp: bool,
                     rng: np.random.Generator) -> Step:
    """One training step with RITM's iterative click simulation; the place to edit for
    another training scheme.

    ``batch``: the stream's ``image (B, 3, H, W)`` uint8 or float, ``target (B, 1, H, W)``
    (1 object, 0 background, -1 ignore) and ``clicks (B, 2N, 3) int32``. Draws ``rounds`` in
    0..``cfg.max_num_next_clicks`` from ``rng``; each round, in eval mode without gradients,
    predicts, adds one click per sample from the errors (``add_error_clicks``) and feeds the
    prediction back as the previous mask (dropped per sample with ``prev_mask_drop_prob``).
    Then one forward and backward pass with the normalized focal loss (+ ``bce_weight`` BCE)
    and one optimizer step. ``net`` is the model or its DDP wrapper.
    """
    image = batch["image"].to(device, non_blocking=True).float().div_(255.0) \
        if batch["image"].dtype == torch.uint8 else batch["image"].to(device)
    target = batch["target"].to(device).float()  # int8 from the RITM preset
    clicks = batch["clicks"].to(device)
    shape = tuple(image.shape[-2:])
    prev = torch.zeros_like(target)
    click_s = 0.0
    rounds = int(rng.integers(0, cfg.max_num_next_clicks + 1))
    if rounds:
        net.eval()
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=amp):
            for _ in range(rounds):
                prev = torch.sigmoid(net(image, click_maps(clicks, shape, cfg), prev).float())
                tc = time.perf_counter()
                clicks = add_error_clicks(prev, target, clicks, rng)
                click_s += time.perf_counter() - tc
        net.train()
        if cfg.prev_mask_drop_prob > 0:
            drop = torch.from_numpy(rng.random(prev.shape[0]) < cfg.prev_mask_drop_prob)
            prev[drop.to(device)] = 0
    with torch.autocast(device.type, torch.bfloat16, enabled=amp):
        logits = net(image, click_maps(clicks, shape, cfg), prev)
    loss = normalized_focal_loss(logits, target, cfg.focal_alpha, cfg.focal_gamma).mean()
    if cfg.bce_weight > 0:
        loss = loss + cfg.bce_weight * masked_bce(logits, target).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return Step(loss, rounds, click_s)


def checkpoint(run: Run, cfg: TrainConfig, step: int, best: dict | None = None,
               is_best: bool = False) -> None:
    """``last.pt`` at every checkpoint, ``ckpt-NNNNNNN.pt`` every ``checkpoint_every`` steps,
    ``best.pt`` when ``is_best``: the model, its optimizer, the stream's position, the
    schedule's state, the best validation so far and the training config."""
    extra = dict(step=step, optimizer=run.optimizer.state_dict(),
                 stream=run.loader.state_dict(), train=to_plain(dataclasses.asdict(cfg)),
                 schedule=schedules.state(run.schedule, step), best=best)
    _atomic_save(run.model, run.out / LAST, **extra)
    if step % cfg.checkpoint_every == 0:
        _atomic_save(run.model, run.out / f"ckpt-{step:07d}.pt", **extra)
    if is_best:
        _atomic_save(run.model, run.out / BEST, **extra)


def validation_step(run: Run, cfg: TrainConfig, sets, step: int, best: dict | None
                    ) -> tuple[dict, dict | None, bool, float]:
    """Validate at ``step``: ``(metrics, best so far, whether this is the new best, seconds)``."""
    from iis_pipe.pipelines.validate import better, validate

    t0 = time.perf_counter()
    metrics = validate(run.model, sets, max_clicks=cfg.val_max_clicks,
                       max_size=cfg.val_max_size, device=run.device,
                       maps={"mode": cfg.maps_mode, "radius": cfg.maps_radius})
    value = metrics["mean"][cfg.best_metric]
    new = better(cfg.best_metric, value, None if best is None else best["value"])
    if new:
        best = {"metric": cfg.best_metric, "value": value, "step": step}
    return metrics, best, new, time.perf_counter() - t0


def train(cfg: TrainConfig, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns a summary (first and last losses, times).

    The output folder is locked for the run (``iis_pipe.outdir``). A fresh run needs it empty,
    or ``overwrite`` (which deletes an earlier run's files, and refuses, deleting nothing, a
    folder holding anything else); ``resume`` continues ``out/last.pt`` with the same settings
    (``RESUME_MAY_CHANGE`` aside) and drops the log rows after its step."""
    if resume and overwrite:
        raise TrainError("resume and overwrite exclude each other")
    rank0 = int(os.environ.get("RANK", 0)) == 0  # one process under torchrun holds the folder
    with outdir.locked(cfg.out) if rank0 else nullcontext():
        ckpt = resume_checkpoint(cfg) if resume else None
        if rank0 and resume:
            truncate_log(Path(cfg.out) / LOG, int(ckpt["step"]))
        elif rank0:
            outdir.clear(cfg.out, OWNED, overwrite=overwrite,
                         hint="use --resume to continue the run in it or --overwrite to start "
                              "a new one")
        return _train(cfg, ckpt, progress)


def _train(cfg: TrainConfig, ckpt: dict[str, Any] | None, progress: bool) -> dict[str, Any]:
    if cfg.val:
        from iis_pipe.pipelines.validate import check_metric, load_sets

        check_metric(cfg.best_metric)
        val_sets = load_sets(cfg.val, cfg.val_limit)  # before any step: a bad source fails now
    run = setup(cfg)
    step = resume_run(run, ckpt) if ckpt is not None else 0
    best = ckpt.get("best") if ckpt is not None else None
    end = run.schedule.total_steps
    period = cfg.val_every or (max(1, round(cfg.val_every_epochs * run.schedule.steps_per_epoch))
                               if cfg.val_every_epochs else 0)
    validations: list[dict] = []
    net = torch.nn.parallel.DistributedDataParallel(run.model) if run.distributed else run.model
    amp = _autocast(cfg.amp, run.device)
    log = open(run.out / LOG, "a") if run.rank == 0 else None
    losses: list[float] = []
    totals = {"data": 0.0, "compute": 0.0, "clicks": 0.0, "val": 0.0}
    samples = 0
    batches = iter(run.loader)
    bar = tqdm(total=end, initial=step, disable=not progress or run.rank != 0, unit="step")
    try:
        while step < end:
            t0 = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:  # next epoch
                batches = iter(run.loader)
                batch = next(batches)
            if not batch["keys"]:  # every record of this batch failed (counted in errors)
                continue
            t1 = time.perf_counter()
            lr = schedules.apply(run.optimizer, run.base_lrs, run.schedule, step) * cfg.lr
            rng = np.random.default_rng([cfg.seed, step, run.rank])
            res = click_round_step(net, run.optimizer, batch, cfg, run.device, amp, rng)
            t2 = time.perf_counter()
            step += 1
            losses.append(res.loss.item())
            totals["data"] += t1 - t0
            totals["compute"] += t2 - t1
            totals["clicks"] += res.click_seconds
            samples += len(batch["keys"])
            if log is not None:
                log.write(json.dumps({"step": step, "loss": losses[-1], "lr": lr,
                                      "rounds": res.rounds,
                                      "data_s": t1 - t0, "compute_s": t2 - t1,
                                      "clicks_s": res.click_seconds,
                                      "samples": len(batch["keys"]),
                                      "stream_errors": len(run.loader.errors)}) + "\n")
                log.flush()
            bar.update()
            busy = totals["data"] + totals["compute"]
            bar.set_postfix_str(f"loss {losses[-1]:.4f} lr {lr:.2e} "
                                f"{samples / busy:.1f} samples/s "
                                f"data-wait {100 * totals['data'] / busy:.0f}%")
            is_best = False
            if run.rank == 0 and cfg.val and (step == end or (period and step % period == 0)):
                metrics, best, is_best, val_s = validation_step(run, cfg, val_sets, step, best)
                totals["val"] += val_s
                validations.append({"step": step, "val": metrics, "val_s": val_s})
                if log is not None:
                    log.write(json.dumps(validations[-1]) + "\n")
                    log.flush()
            if run.rank == 0 and (step % cfg.checkpoint_every == 0 or step == end or is_best):
                checkpoint(run, cfg, step, best, is_best)
    finally:
        bar.close()
        if log is not None:
            log.close()
        if run.distributed:
            dist.destroy_process_group()
    wall = totals["data"] + totals["compute"]
    return {"steps": step, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "losses": losses,
            "data_wait_fraction": totals["data"] / wall if wall else 0.0,
            "samples_per_second": samples / wall if wall else 0.0,
            "click_seconds": totals["clicks"], "validation_seconds": totals["val"],
            "validations": validations, "best": best, "checkpoint": str(run.out / LAST)}

