"""``iis-pipe bench ...``: throughput measurements that are part of the toolkit."""

from __future__ import annotations

from pathlib import Path

import click

from cli.main import main


@main.group()
def bench() -> None:
    """Measure throughput (one core unless told otherwise)."""


@bench.command("clicks")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding DAVIS/ (default: $IIS_DATA, else ../shared/data).")
@click.option("--masks", type=click.IntRange(min=1), default=30, show_default=True,
              help="DAVIS frames, evenly spaced.")
@click.option("--clicks", type=click.IntRange(min=1), default=10, show_default=True,
              help="Clicks per simulated session.")
@click.option("--samples", type=click.IntRange(min=1), default=300, show_default=True,
              help="Training samples.")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Encoder batch size B.")
@click.option("--points", type=click.IntRange(min=1), default=24, show_default=True,
              help="N, clicks per side.")
@click.option("--seed", type=int, default=0, show_default=True)
def bench_clicks(data, masks, clicks, samples, batch, points, seed) -> None:
    """Standard click, training sampler and encoders vs their plain numpy/OpenCV statements."""
    from pipelines import bench_clicks as bc

    bc.pin_one_core()
    try:
        params = bc.ClickBenchParams(masks, clicks, samples, batch, points, seed)
        res = bc.run(data or bc.default_data_root(), params)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(bc.report(res))
