"""``iis-pipe train``: iterative training from record shards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from iis_pipe.cli.options import parse_knobs
from iis_pipe.stream.presets import PRESETS


@click.command()
@click.argument("shards", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for checkpoints (last.pt, ckpt-N.pt) and log.jsonl; an empty or new "
              "one unless --resume or --overwrite.")
@click.option("-m", "--model", default="hrnet18s-conv1s", show_default=True,
              help="Registered model name or timm:<backbone>.")
@click.option("--init", "init_checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Local checkpoint to start from.")
@click.option("--recipe", type=click.Choice(sorted(PRESETS)), default="ritm", show_default=True)
@click.option("-k", "--knob", "knobs", multiple=True, metavar="NAME=VALUE",
              help="Stream keyword, e.g. -k batch_size=8 -k crop_size=[256,256].")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-4, show_default=True)
@click.option("--backbone-lr-mult", type=click.FloatRange(min=0), default=0.1, show_default=True)
@click.option("--max-next-clicks", type=click.IntRange(min=0), default=3, show_default=True,
              help="Extra click rounds without gradients, 0..N drawn per step.")
@click.option("--bce-weight", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("-w", "--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Stream DataLoader workers (0: in this process).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--amp", type=click.Choice(["auto", "bf16", "off"]), default="auto",
              show_default=True, help="bf16 autocast: auto (on GPU), bf16 (any device), off.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backbone-weights", type=click.Path(dir_okay=False), default=None,
              help="Local timm classifier weights for the backbone (.pth or .safetensors, "
              "timm's key names), e.g. ImageNet.")
@click.option("--schedule", type=click.Choice(["constant", "multistep", "cosine"]),
              default="constant", show_default=True, help="Learning-rate schedule.")
@click.option("--epoch-samples", type=click.IntRange(min=1), default=None,
              help="Samples per epoch (RITM: 30000); default: the stream's.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Run length in epochs (overrides --steps); RITM: 230.")
@click.option("--milestones", default="200,220", show_default=True,
              help="multistep: epochs where the rate is multiplied by --gamma.")
@click.option("--gamma", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True)
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Linear warm-up steps (any schedule).")
@click.option("--min-lr-factor", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="cosine: the final rate as a fraction of the base.")
@click.option("--val", "val", multiple=True, type=click.Path(),
              help="Validation source (dataset folder or shards, repeatable).")
@click.option("--val-limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Images of each validation source.")
@click.option("--val-every", default="0", show_default=True, metavar="N|Nep",
              help="Validate every N steps, or every N epochs with 'ep' (e.g. 5ep); 0: at the "
              "end only.")
@click.option("--val-max-clicks", type=click.IntRange(min=5), default=20, show_default=True)
@click.option("--val-max-size", type=click.IntRange(min=32), default=480, show_default=True,
              help="Long side the model predicts at in validation.")
@click.option("--best-metric", type=click.Choice(["NoC@85", "NoC@90", "mIoU@1", "mIoU@5"]),
              default="NoC@90", show_default=True, help="What best.pt is chosen by.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt (model, optimizer, "
              "stream position, schedule, best validation) with the same settings (--steps, "
              "-w, --device and --checkpoint-every may change).")
@click.option("--overwrite", is_flag=True, help="Delete an earlier run's files in OUT first "
              "(refused, deleting nothing, when OUT holds other files).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(shards, out, model, init_checkpoint, recipe, knobs, steps, lr, backbone_lr_mult,
          max_next_clicks, bce_weight, workers, checkpoint_every, device, amp, seed,
          backbone_weights, schedule, epoch_samples, epochs, milestones, gamma, warmup_steps,
          min_lr_factor, val, val_limit, val_every, val_max_clicks, val_max_size, best_metric,
          resume, overwrite, quiet):
    """Train an IIS model on SHARDS with iterative click simulation (torchrun for DDP).

    The progress line shows loss, learning rate, samples/s and the data-wait share; log.jsonl
    has a line per step and per validation (`iis-pipe plot OUT` draws them)."""
    from iis_pipe.models import CheckpointError
    from iis_pipe.pipelines.train import TrainConfig, train as run

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    stream = parse_knobs(knobs)
    try:
        marks = tuple(int(m) for m in milestones.split(",") if m.strip())
        text = val_every.strip().lower()
        every_epochs = float(text[:-2]) if text.endswith("ep") else None
        every = 0 if every_epochs is not None else int(text)
        if every < 0 or (every_epochs is not None and every_epochs <= 0):
            raise ValueError
    except ValueError:
        raise click.BadParameter("--milestones takes epochs such as 200,220 and --val-every N "
                                 "or Nep (N > 0)") from None
    cfg = TrainConfig(shards=list(shards), out=str(out), model=model,
                      model_kwargs={"backbone_weights": backbone_weights} if backbone_weights
                      else {},
                      init_checkpoint=init_checkpoint, recipe=recipe, stream=stream,
                      steps=steps, lr=lr, backbone_lr_mult=backbone_lr_mult,
                      max_num_next_clicks=max_next_clicks, bce_weight=bce_weight,
                      workers=workers, checkpoint_every=checkpoint_every, device=device,
                      amp=amp, seed=seed, schedule=schedule, epoch_samples=epoch_samples,
                      epochs=epochs, milestones=marks, gamma=gamma, warmup_steps=warmup_steps,
                      min_lr_factor=min_lr_factor, val=tuple(val), val_limit=val_limit,
                      val_every=every, val_every_epochs=every_epochs,
                      val_max_clicks=val_max_clicks, val_max_size=val_max_size,
                      best_metric=best_metric)
    try:
        res = run(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    except (FileNotFoundError, KeyError, TypeError, ValueError, CheckpointError) as e:
        raise click.ClickException(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    if int(os.environ.get("RANK", 0)) == 0:  # one summary under torchrun
        click.echo(json.dumps({k: v for k, v in res.items() if k not in ("losses", "validations")},
                              indent=2))
