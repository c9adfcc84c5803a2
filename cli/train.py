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
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt (model, optimizer, "
              "stream position) with the same settings (--steps, -w, --device and "
              "--checkpoint-every may change).")
@click.option("--overwrite", is_flag=True, help="Delete an earlier run's files in OUT first "
              "(refused, deleting nothing, when OUT holds other files).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(shards, out, model, init_checkpoint, recipe, knobs, steps, lr, backbone_lr_mult,
          max_next_clicks, bce_weight, workers, checkpoint_every, device, amp, seed, resume,
          overwrite, quiet):
    """Train an IIS model on SHARDS with iterative click simulation (torchrun for DDP)."""
    from iis_pipe.models import CheckpointError
    from iis_pipe.pipelines.train import TrainConfig, train as run

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    stream = parse_knobs(knobs)
    cfg = TrainConfig(shards=list(shards), out=str(out), model=model,
                      init_checkpoint=init_checkpoint, recipe=recipe, stream=stream,
                      steps=steps, lr=lr, backbone_lr_mult=backbone_lr_mult,
                      max_num_next_clicks=max_next_clicks, bce_weight=bce_weight,
                      workers=workers, checkpoint_every=checkpoint_every, device=device,
                      amp=amp, seed=seed)
    try:
        res = run(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    except (FileNotFoundError, KeyError, TypeError, ValueError, CheckpointError) as e:
        raise click.ClickException(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    if int(os.environ.get("RANK", 0)) == 0:  # one summary under torchrun
        click.echo(json.dumps({k: v for k, v in res.items() if k != "losses"}, indent=2))
