"""Evaluation commands: ``evaluate`` (the standard click protocol) and ``plot`` (mIoU curves)."""

from __future__ import annotations

from pathlib import Path

import click

from iis_pipe.cli.options import parse_options
from iis_pipe import sources


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
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(source, predictor, popts, out, fmt, opts, max_clicks, threshold, objects, limit,
             workers, name, plot_with, clicks_file, quiet):
    """NoC@85/90/95, NoF and mIoU per click of a predictor on each SOURCE (prepared shards or
    a dataset folder), with the standard robot (or the clicks of --clicks)."""
    from iis_pipe.pipelines.evaluate import Protocol, evaluate as run, format_table

    try:
        res = run(list(source), out, predictor=predictor,
                  predictor_options=parse_options(popts), format=fmt,
                  source_options=parse_options(opts),
                  protocol=Protocol(max_clicks=max_clicks, threshold=threshold, objects=objects),
                  limit=limit, workers=workers, name=name, plot_with=plot_with,
                  progress=not quiet, clicks=clicks_file)
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
    """mIoU per click of several evaluation RUNS on one PNG, and their table."""
    from iis_pipe.pipelines.evaluate import format_table, plot_runs, read_summary

    try:
        summaries = [read_summary(r) for r in runs]
        path = plot_runs(summaries, out)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_table(summaries))
    click.echo(f"plot: {path}")
