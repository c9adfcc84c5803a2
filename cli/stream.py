"""Stream commands: ``bench decode`` and ``profile loader``."""

from __future__ import annotations

import click

from cli.bench import bench
from cli.data import _options
from cli.main import main


def _pin_one_core() -> None:
    import os

    import cv2
    import torch

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


@bench.command("decode")
@click.argument("shards", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True,
              help="JPEGs to decode (0: all in the shards).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True)
def decode(shards, limit, repeats):
    """Every available JPEG decoder (cv2, simplejpeg, PIL, torchvision, and the stream's own
    window decoder, also on a centred quarter) at full and half scale on the shards' own JPEGs,
    one core."""
    from pipelines.profile import bench_decode, shard_jpegs

    _pin_one_core()
    try:
        jpegs = shard_jpegs(list(shards), limit)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    if not jpegs:
        raise click.ClickException("the shards hold no JPEG images")
    results = bench_decode(jpegs, repeats)
    base = max(r.images_per_s for r in results if r.scale == "full")
    click.echo(f"{len(jpegs)} JPEGs, one core")
    click.echo(f"{'decoder':<12}{'scale':>6}{'images/s':>10}{'MP/s':>9}{'vs best full':>14}")
    for r in results:
        click.echo(f"{r.decoder:<12}{r.scale:>6}{r.images_per_s:>10.1f}{r.megapixels_per_s:>9.1f}"
                   f"{r.images_per_s / base:>13.2f}x")


@main.group()
def profile() -> None:
    """Where the time goes."""


@profile.command("loader")
@click.argument("shards", nargs=-1, required=True)
@click.option("--recipe", type=click.Choice(["ritm", "plain"]), default="ritm", show_default=True,
              help="ritm: RITM's COCO+LVIS HRNet-18 recipe; plain: the stream's defaults.")
@click.option("-k", "--knob", "knobs", multiple=True, metavar="NAME=VALUE",
              help="Any stream keyword, e.g. -k batch_size=16 -k crop_size=[256,256].")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="N for the N-worker run (the other run uses 1).")
@click.option("--batches", type=click.IntRange(min=1), default=20, show_default=True)
def loader(shards, recipe, knobs, workers, batches):
    """Samples/s and time per stage of the training loader, for 1 worker and N workers."""
    from pipelines.profile import profile_loader
    from pipelines.stream import ritm_cocolvis_hrnet18, stream_config

    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in _options(knobs).items()}
    try:
        make = ritm_cocolvis_hrnet18 if recipe == "ritm" else stream_config
        cfg = make(list(shards), **opts)
        inproc = profile_loader(cfg, 0, batches)
        runs = [profile_loader(cfg, n, batches) for n in sorted({1, workers})]
    except (FileNotFoundError, TypeError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"in-process: {inproc.samples_per_s:.1f} samples/s; per sample:")
    total = sum(inproc.stages.values())
    for stage, sec in sorted(inproc.stages.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {stage:<9}{1000 * sec:8.2f} ms  {100 * sec / total:5.1f}%")
    one = runs[0].samples_per_s
    for r in runs:
        click.echo(f"{r.workers} worker(s): {r.samples_per_s:.1f} samples/s "
                   f"({r.samples_per_s / one:.2f}x one worker)")
