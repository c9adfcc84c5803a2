"""``iis-pipe bench clicks`` and ``bench decode``: throughput measurements that are part of the
toolkit (``iis_pipe.profiling``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
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
    from iis_pipe.data_root import data_root
    from iis_pipe.profiling import clicks as bc
    from iis_pipe.profiling.cores import pin_one_core

    pin_one_core()
    try:
        params = bc.ClickBenchParams(masks, clicks, samples, batch, points, seed)
        res = bc.run(data or data_root(), params)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(bc.report(res))


@bench.command("decode")
@click.argument("shards", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True,
              help="JPEGs to decode (0: all in the shards).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True)
def decode(shards, limit, repeats):
    """Every available JPEG decoder (cv2, simplejpeg, PIL, torchvision, and the stream's own
    window decoder, also on a centred quarter) at full and half scale on the shards' own JPEGs,
    one core."""
    from iis_pipe.profiling.cores import pin_one_core
    from iis_pipe.profiling.decode import bench_decode, shard_jpegs

    pin_one_core()
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
