"""``iis-pipe table``: evaluation runs into one paper table (Markdown or LaTeX)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--metrics", default="NoC@85,NoC@90,mIoU@1,mIoU@5", show_default=True,
              help="Comma-separated metric names: NoC@T, NoC@T/K (within K clicks), NoF@T, "
              "NoF@T/K, mIoU@k, k-mIoU, mIoU@k-once (k points at once), SPC.")
@click.option("-f", "--format", "fmt", type=click.Choice(["markdown", "latex"]),
              default="markdown", show_default=True)
@click.option("-d", "--dataset", "datasets", multiple=True,
              help="Datasets as columns, in this order (default: every one, as first met).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table here as well as printing it.")
def table(runs, metrics, fmt, datasets, out):
    """One table of several evaluation RUNS: a row per run, datasets as columns, each metric
    under its exact name, and what each means below it."""
    from iis_pipe.pipelines.table import table as build

    try:
        text = build(list(runs), [m for m in metrics.split(",") if m.strip()], fmt,
                     list(datasets) or None)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
