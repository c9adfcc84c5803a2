"""Dataset commands: prepare, inspect, verify, show, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from iis_pipe.cli.options import ByteSize, DatasetRoot, parse_options
from iis_pipe import sources
from iis_pipe.errors import BadInput

def _fail(e: Exception) -> click.ClickException:
    return click.ClickException(str(e))


@click.command()
@click.argument("source", required=False, default="toy")
@click.option("-f", "--format", "fmt", type=click.Choice(sorted(sources.FORMATS)),
              help="Dataset layout; detected from the folder when omitted.")
@click.option("-o", "--out", required=True,
              help="Output folder for shards, index and manifest: a path or an fsspec URL "
                   "(s3://bucket/prefix, gs://..., file://...).")
@click.option("-O", "--option", "opts", multiple=True, metavar="KEY=VALUE",
              help="Source option (repeatable; a key given twice makes a list), e.g. -O split=val "
                   "-O ignore_value=255 -O annotations=lvis.json -O annotations=coco.json.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores; 1 runs in this process).")
@click.option("--shard-size", type=ByteSize(), default="256MB", show_default=True,
              help="Maximum bytes of records per shard.")
@click.option("--shard-count", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Maximum records per shard.")
@click.option("--split-components", is_flag=True,
              help="Each connected component of an instance becomes its own region.")
@click.option("--min-area", type=click.IntRange(min=1), default=1, show_default=True,
              help="Regions smaller than this many pixels are dropped (and counted).")
@click.option("--dt-step", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Stored distance quantum in pixels (error <= step/2).")
@click.option("--dt-clip", type=click.IntRange(1, 255), default=255, show_default=True,
              help="Stored distances saturate at clip * step pixels.")
@click.option("--dt-expand", type=click.FloatRange(min=0), default=0.25, show_default=True,
              help="Largest expand_ratio of the training sampler's border band the stored "
                   "distances serve (outside distances kept to about this times sqrt(area) "
                   "per region); a stream asking for more is refused.")
@click.option("--jpeg-restarts", type=click.IntRange(min=0), default=0, show_default=True,
              help="0 stores JPEG bytes untouched, with an entry-point index of the "
                   "sequential ones (about 2 % of their bytes), so training decodes only a "
                   "crop's part. N re-codes them without loss (same pixels) with a restart "
                   "marker every N MCUs instead (4 is a good N: files about 3 % larger).")
@click.option("--shard-inputs", type=click.IntRange(min=1), default=None,
              help="Each shard holds the records of N consecutive inputs (the size and count "
                   "caps do not apply): shards are then made independently, one task each.")
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Make the shards on a Dask cluster: a scheduler address (tcp://host:8786) "
                   "or local:N (N worker processes here). Needs --shard-inputs; OUT must be "
                   "writable by every worker (shared folder or object store).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="With --cluster: tries more of a failed or lost shard task before its "
                   "inputs are recorded as rejects.")
@click.option("--max-side", type=click.IntRange(min=1), default=None,
              help="Shrink images whose longer side exceeds N pixels once, masks with them "
                   "(area resampling, kept where half covered); the JPEG is re-encoded: lossy.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in OUT.")
@click.option("--overwrite", is_flag=True, help="Delete an earlier run's output in OUT first.")
@click.option("--strict", is_flag=True, help="Stop at the first bad input instead of recording it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def prepare(source, fmt, out, opts, workers, shard_size, shard_count, split_components,
            min_area, dt_step, dt_clip, dt_expand, jpeg_restarts, shard_inputs, cluster,
            retries, max_side, resume, overwrite, strict, quiet):
    """Convert the dataset at SOURCE (a folder; 'toy' for the built-in synthetic set) into
    webdataset shards of region records with a parquet index."""
    from iis_pipe.pipelines.prepare import PrepareError, RecordParams, prepare as run

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if cluster is not None and shard_inputs is None:
        raise click.UsageError("--cluster needs --shard-inputs N (inputs per shard: one task "
                               "each)")
    if source != "toy" and not Path(source).exists():
        raise click.BadParameter(f"{source}: no such folder", param_hint="SOURCE")
    if fmt is None and source != "toy":
        try:
            fmt = sources.detect_format(Path(source))
        except ValueError as e:
            raise click.ClickException(f"{e}; name the layout with --format") from None
    params = RecordParams(split_components=split_components, min_area=min_area,
                          dt_step=dt_step, dt_clip=dt_clip, dt_expand=dt_expand,
                          jpeg_restarts=jpeg_restarts, max_side=max_side or 0)
    try:
        res = run(source, out, format=fmt, params=params,
                  source_options=parse_options(opts, collect_repeats=True), workers=workers, shard_size=shard_size,
                  shard_count=shard_count, shard_inputs=shard_inputs, cluster=cluster,
                  retries=retries, resume=resume, overwrite=overwrite, strict=strict,
                  progress=not quiet)
    except (PrepareError, ValueError, TypeError, OSError, BadInput) as e:
        raise _fail(e) from None
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished shards in {out} are kept; rerun with --resume",
                   err=True)
        sys.exit(130)
    b = res.bytes
    click.echo(f"{res.out}: {res.records} records, {res.regions} regions, {res.rejects} rejected "
               f"of {res.inputs} inputs, {res.shards} shards")
    click.echo(f"bytes: images {b['image']:,}  JPEG index {b['jpeg_index']:,}  "
               f"regions {b['regions']:,}  ignore {b['ignore']:,}  "
               f"distances {b['dt']:,} ({b['dt'] / max(b['image'], 1):.2f}x images)  "
               f"total {b['total']:,}")
    click.echo(f"{res.processed} images in {res.seconds:.1f} s: {res.images_per_s:.1f} images/s")
    if res.resized:
        click.echo(f"resized (lossy): {res.resized['note']}")
    if res.dropped:
        click.echo("instances dropped: " + ", ".join(f"{kind} {n}" for kind, n in res.dropped.items()))
    for source, found in res.mask_encoding.items():
        click.echo(f"masks of {source}: " + ", ".join(f"{enc} {n}" for enc, n in found.items()))
    for reason, n in sorted(res.reject_reasons.items(), key=lambda kv: -kv[1]):
        click.echo(f"  rejected {n:5d}: {reason}")
    if res.rejects:
        click.echo(f"  details: {res.out}/rejects.parquet")


@click.command()
@click.argument("root", type=DatasetRoot())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(root, as_json):
    """Counts, sizes, region areas and sources of a prepared dataset."""
    from iis_pipe.pipelines.inspect import inspect as run

    try:
        info = run(root)
    except OSError as e:
        raise _fail(e) from None
    for key, what in (("missing_shards", "listed in the manifest are missing"),
                      ("extra_shards", "not in the manifest")):
        if info[key]:
            click.echo(f"WARNING {root}: {len(info[key])} shard(s) {what}: "
                       f"{', '.join(info[key])} (run `iis-pipe verify`)", err=True)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    c, b = info["counts"], info["bytes"]
    click.echo(f"{info['root']} ({info['format']}, schema {info['schema']}): {info['records']} "
               f"records, {info['regions']} regions in {info['shards']} shards; "
               f"{c['rejects']} of {c['inputs']} inputs rejected")
    click.echo("bytes: " + "  ".join(f"{k} {v:,}" for k, v in b.items()))
    sz = info["image_sizes"]
    click.echo(f"image sizes: {sz['distinct']} distinct, from {sz['min']} to {sz['max']} (H, W)")
    click.echo("region area (pixels):")
    top = max((r["regions"] for r in info["area_histogram"]), default=1) or 1
    for r in info["area_histogram"]:
        hi = "inf" if r["to"] is None else f"{r['to']:,}"
        click.echo(f"  {r['from']:>9,} - {hi:>9} {r['regions']:6d} " + "#" * round(40 * r["regions"] / top))
    o = info["objects_per_image"]
    click.echo(f"objects per image: mean {o['mean']:.1f}, median {o['median']:g}, max {o['max']}")
    top = max((r["records"] for r in o["histogram"]), default=1) or 1
    for r in o["histogram"]:
        span = f"{r['from']}+" if r["to"] is None else (f"{r['from']}" if r["to"] == r["from"]
                                                        else f"{r['from']}-{r['to']}")
        click.echo(f"  {span:>9} {r['records']:6d} " + "#" * round(40 * r["records"] / top))
    click.echo(f"{'source':<12}{'records':>9}{'regions':>9}{'reg/rec':>9}{'median area':>13}")
    for s in info["per_source"]:
        click.echo(f"{s['source']:<12}{s['records']:>9}{s['regions']:>9}"
                   f"{s['regions_per_record']:>9.2f}{s['median_area']:>13,.0f}")


@click.command()
@click.argument("root", type=DatasetRoot())
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def verify(root, quiet):
    """Check checksums, that every record decodes, and that the index matches the shards.
    Exits non-zero on any fault."""
    from iis_pipe.pipelines.verify import verify as run

    try:
        report = run(root, progress=not quiet)
    except OSError as e:
        raise _fail(e) from None
    for shard, key, reason in report.faults:
        click.echo(f"FAULT {shard} {key}: {reason}", err=True)
    click.echo(f"{root}: {report.records} records, {report.regions} regions checked, "
               f"{len(report.faults)} faults")
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("root", type=DatasetRoot())
@click.option("--key", default=None, help="Record key (default: the first record).")
@click.option("--region", type=click.IntRange(min=0), default=0, show_default=True,
              help="Region whose distance map is drawn.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("preview.png"), show_default=True)
def show(root, key, region, out):
    """Write a preview PNG of one record: regions, ignore pixels, distance map."""
    from iis_pipe.pipelines.preview import show as run

    try:
        path = run(root, out, key=key, region=region)
    except (KeyError, IndexError, FileNotFoundError, OSError) as e:
        raise _fail(e.args[0] if isinstance(e, KeyError) else e) from None
    click.echo(f"preview: {path}")


@click.command()
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out/demo"), show_default=True)
@click.option("-n", "--count", type=click.IntRange(min=1), default=48, show_default=True,
              help="Synthetic images to generate.")
@click.option("--evaluate", "eval_count", type=click.IntRange(min=1), default=8,
              show_default=True, help="Records of those the NoC evaluation runs on (the first "
              "ones; about 2 s each on one core).")
def demo(out, count, eval_count):
    """The main job on the built-in synthetic dataset: prepare, verify, preview, and a NoC
    evaluation of the classical predictor on the first --evaluate records."""
    from iis_pipe.pipelines.evaluate import evaluate, format_table
    from iis_pipe.pipelines.prepare import prepare as run_prepare
    from iis_pipe.pipelines.preview import show as run_show
    from iis_pipe.pipelines.verify import verify as run_verify

    shards = out / "shards"
    res = run_prepare("toy", shards, source_options={"count": count}, overwrite=True)
    click.echo(f"prepared {res.records} records, {res.regions} regions into {shards} "
               f"({res.images_per_s:.1f} images/s)")
    report = run_verify(shards, progress=False)
    click.echo(f"verified: {report.records} records, {len(report.faults)} faults")
    preview = run_show(shards, out / "preview.png")
    click.echo(f"preview picture: {preview}")
    n_eval = min(eval_count, res.records)
    click.echo(f"evaluating the classical predictor on the first {n_eval} of {res.records} "
               "records (--evaluate N for more)")
    ev = evaluate([shards], out / "eval", predictor="grabcut", limit=n_eval, workers=1)
    click.echo(format_table([ev.summary]))
    click.echo(f"evaluation ({n_eval} of {res.records} records): {out / 'eval'} (summary.json, "
               "samples.parquet, miou.png)")
    if not report.ok:
        sys.exit(1)
