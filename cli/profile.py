"""``iis-pipe profile loader``: where the training loader's time goes."""

from __future__ import annotations

import click

from iis_pipe.cli.options import parse_knobs
from iis_pipe.stream.presets import PRESETS, preset


@click.group()
def profile() -> None:
    """Where the time goes."""


@profile.command("loader")
@click.argument("shards", nargs=-1, required=True)
@click.option("--recipe", type=click.Choice(sorted(PRESETS)), default="ritm", show_default=True,
              help="ritm: RITM's COCO+LVIS HRNet-18 recipe; plain: the stream's defaults.")
@click.option("-k", "--knob", "knobs", multiple=True, metavar="NAME=VALUE",
              help="Any stream keyword, e.g. -k batch_size=16 -k crop_size=[256,256].")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="N for the N-worker run (the other run uses 1).")
@click.option("--batches", type=click.IntRange(min=1), default=20, show_default=True)
def loader(shards, recipe, knobs, workers, batches):
    """Samples/s and time per stage of the training loader, for 1 worker and N workers."""
    from iis_pipe.profiling.loader import profile_loader

    opts = parse_knobs(knobs)
    try:
        cfg = preset(recipe, list(shards), **opts)
        inproc = profile_loader(cfg, 0, batches)
        runs = [profile_loader(cfg, n, batches) for n in sorted({1, workers})]
    except (FileNotFoundError, TypeError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"in-process: {inproc.samples_per_s:.1f} samples/s; per sample:")
    total = sum(inproc.stages.values())
    for stage, sec in sorted(inproc.stages.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {stage:<12}{1000 * sec:7.2f} ms  {100 * sec / total:5.1f}%")
    one = runs[0].samples_per_s
    for r in runs:
        click.echo(f"{r.workers} worker(s): {r.samples_per_s:.1f} samples/s "
                   f"({r.samples_per_s / one:.2f}x one worker)"
                   + (f", {r.errors} skipped" if r.errors else "")
                   + (f", {r.retries} remote reads resumed" if r.retries else ""))
