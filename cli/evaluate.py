"""Evaluation commands: ``evaluate`` (the standard click protocol) and ``plot`` (mIoU curves)."""

from __future__ import annotations

from pathlib import Path

import click

from iis_pipe.cli.options import parse_options
from iis_pipe import sources
from iis_pipe.clicking import ROBOTS


@click.command()
@click.argument("source", nargs=-1, required=True)
@click.option("-p", "--predictor", default="grabcut", show_default=True,
              help="'grabcut' (classical, no weights) or a model checkpoint file (.pt).")
@click.option("-P", "--predictor-option", "popts", multiple=True, metavar="KEY=VALUE",
              help="Predictor option (repeatable), e.g. -P size=192 or -P max_size=480.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: samples.parquet, summary.json, miou.png.")
@click.option("-f", "--format", "fmt", type=click.Choice(sorted(sources.FORMATS)),
              help="Layout of dataset folders; detected when omitted.")
@click.option("-O", "--option", "opts", multiple=True, metavar="KEY=VALUE",
              help="Source option for dataset folders, e.g. -O merge_instances=true (DAVIS).")
@click.option("--max-clicks", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.49, show_default=True,
              help="The mask is probs > threshold.")
@click.option("--objects", type=click.Choice(["regions", "union"]), default="regions",
              show_default=True, help="Each region is an object, or a record's union of regions.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N images of each source.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores; 1 runs in this process).")
@click.option("--name", default=None, help="Run name in tables and plots (default: 'grabcut', or a checkpoint's folder and "
                   "stem: runs/a/last.pt -> a/last).")
@click.option("--plot-with", multiple=True, type=click.Path(path_type=Path),
              help="Another run folder whose curves join this run's plot (repeatable).")
@click.option("--clicks", "clicks_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Replay these clicks instead of the robot's: a click file (JSON, as the app "
                   "exports or a list per object) or a run's samples.parquet; only the objects "
                   "it names are evaluated.")
@click.option("--robot", type=click.Choice(list(ROBOTS)), default="standard", show_default=True,
              help="Who clicks: the standard rule, or a random/other robot (named in tables).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of random robots and of the at-once points.")
@click.option("--at-once", "at_once", default="", metavar="K,K...",
              help="Also run SAM's k-points-at-once protocol for these k, e.g. 1,3,5.")
@click.option("--flip", is_flag=True, help="Horizontal-flip test-time averaging.")
@click.option("--zoom-in", is_flag=True, help="RITM's zoom-in after the first click "
              "(long side 400; -Z target_size=600 for DAVIS as RITM).")
@click.option("--fixed-crop", is_flag=True, help="SimpleClick's fixed 448x448 crop from the "
              "first click.")
@click.option("-Z", "--zoom-option", "zopts", multiple=True, metavar="KEY=VALUE",
              help="Zoom option: target_size, skip_clicks, expansion_ratio, min_crop_size, "
              "recompute_iou, prob_thresh, outside (zero|prev).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(source, predictor, popts, out, fmt, opts, max_clicks, threshold, objects, limit,
             workers, name, plot_with, clicks_file, robot, seed, at_once, flip, zoom_in,
             fixed_crop, zopts, quiet):
    """NoC@85/90/95, NoF and mIoU per click of a predictor on each SOURCE (prepared shards or
    a dataset folder), with the standard robot unless --robot names another (or the clicks of
    --clicks).

    Test-time wrappers are off unless asked for: --flip (innermost), then --zoom-in or
    --fixed-crop; their options are recorded in summary.json."""
    from iis_pipe.pipelines.evaluate import Protocol, evaluate as run, format_table

    try:
        if zoom_in and fixed_crop:
            raise ValueError("--zoom-in and --fixed-crop are two zooms: choose one")
        zoom = parse_options(zopts)
        if zoom and not (zoom_in or fixed_crop):
            raise ValueError("-Z options need --zoom-in or --fixed-crop")
        wrappers = [("flip", {})] if flip else []
        if zoom_in or fixed_crop:
            wrappers.append(("zoom_in" if zoom_in else "fixed_crop", zoom))
        try:
            ks = [int(k) for k in at_once.split(",") if k.strip()]
        except ValueError:
            raise ValueError(f"--at-once takes click counts such as 1,3,5, not {at_once!r}"
                             ) from None
        res = run(list(source), out, predictor=predictor,
                  predictor_options=parse_options(popts), format=fmt,
                  source_options=parse_options(opts),
                  protocol=Protocol(max_clicks=max_clicks, threshold=threshold, objects=objects,
                                    robot=robot, seed=seed, at_once=tuple(ks)),
                  limit=limit, workers=workers, name=name, plot_with=plot_with,
                  progress=not quiet, clicks=clicks_file, wrappers=wrappers)
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_table([res.summary]))
    for d in res.summary["datasets"]:
        click.echo(f"{d['dataset']}: {d['samples']} objects evaluated, {d['failed']} failed, "
                   f"{d['seconds']:.1f} s")
        for f in d["failures"]:
            click.echo(f"  FAILED {f['key']} {f['file']}: {f['reason']}", err=True)
    click.echo(f"results: {res.out}")
    if not any(d["samples"] for d in res.summary["datasets"]):
        raise click.ClickException("every object failed: no NoC to report (see the FAILED "
                                   "lines above)")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("miou.png"), show_default=True)
def plot(runs, out):
    """Plot RUNS on one PNG: evaluation runs (summary.json) as mIoU per click, with their
    table; training runs (log.jsonl) as loss, validation NoC and learning rate per step.

    All RUNS must be of one kind."""
    from iis_pipe.pipelines.evaluate import SUMMARY_FILE, format_table, plot_runs, read_summary
    from iis_pipe.training.plots import LOG_FILE, plot_training

    kinds = {"evaluation" if (Path(r) / SUMMARY_FILE).is_file() or Path(r).name == SUMMARY_FILE
             else "training" if (Path(r) / LOG_FILE).is_file() or Path(r).name == LOG_FILE
             else "unknown" for r in runs}
    try:
        if kinds == {"training"}:
            path = plot_training([(Path(r).name, r) for r in runs], out)
            click.echo(f"plot: {path}")
            return
        if len(kinds) > 1 and "unknown" not in kinds:
            raise ValueError("give evaluation runs (summary.json) or training runs (log.jsonl), "
                             "not both")
        summaries = [read_summary(r) for r in runs]
        path = plot_runs(summaries, out)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_table(summaries))
    click.echo(f"plot: {path}")
