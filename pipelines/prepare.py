"""``prepare``: a segmentation dataset on disk -> webdataset shards of records + parquet index.

sources (scan, load) -> regions (candidates) -> records (encode) -> shards (parts) -> index.
Work over images runs on an executor; results are written in input order, so shard contents
do not depend on the worker count and an interrupted run resumes to the very same index.
"""

from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from iis_pipe import images, outdir, sources
from iis_pipe.errors import BadInput, IISError
from iis_pipe.records import schema
from iis_pipe.records.distances import DistanceCoding
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.sources.resize import JPEG_QUALITY, limit_side
from iis_pipe.shards import index as idx
from iis_pipe.shards.writer import PARTS_DIR, RUN_FILE, PartWriter, finished_parts
from iis_pipe.pipelines.executors import make_executor, ordered_map

SMALL_RUN = 100  # inputs below which the default is to work in this process


@dataclass(frozen=True)
class RecordParams:
    """How images become records (stored in the manifest)."""

    split_components: bool = False
    min_area: int = 1
    dt_step: float = 1.0
    dt_clip: int = 255
    # the largest expand_ratio of the click sampler's border band the maps serve: outside
    # levels are kept to about dt_expand * sqrt(area) per region (distances.reach); a stream
    # asking for more is refused
    dt_expand: float = schema.DEFAULT_EXPAND
    # 0: JPEG bytes stored untouched. N: re-coded without loss (the same pixels) with a restart
    # marker every N MCUs, so the training stream decodes only a crop's segments (4 is good)
    jpeg_restarts: int = 0
    # 0: images keep their size. N: larger images are shrunk once so their longer side is N,
    # the JPEG re-encoded (lossy; sources/resize.py)
    max_side: int = 0

    @property
    def coding(self) -> DistanceCoding:
        return DistanceCoding(step=self.dt_step, clip=self.dt_clip)


@dataclass
class PrepareResult:
    out: Path
    inputs: int
    records: int
    regions: int
    rejects: int
    reject_reasons: dict[str, int]
    bytes: dict[str, int]
    seconds: float
    processed: int
    shards: int
    timings: dict[str, float] = field(default_factory=dict)
    mask_encoding: dict[str, dict[str, int]] = field(default_factory=dict)
    resized: dict[str, Any] | None = None  # manifest["resized"] with --max-side
    dropped: dict[str, int] = field(default_factory=dict)  # instances left out, by kind

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


class PrepareError(IISError, RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


def make_record(item: sources.SourceItem, fmt: str, params: RecordParams) -> dict[str, Any]:
    """Load one item and encode its record. Returns a result dict (picklable): either
    ``{"key", "members", "rows", "checksum", "notes", "timings"}`` or ``{"key", "file", "reason"}``;
    ``notes`` (for the manifest) has the source, its mask encoding, the instances dropped by
    kind and, with ``max_side``, the original size."""
    t0 = time.perf_counter()
    try:
        sample = sources.get_format(fmt).load(item)
        resized_from = None
        if params.max_side:
            sample = limit_side(sample, params.max_side)
            resized_from = sample.meta.get("resized_from")
        t1 = time.perf_counter()
        masks, meta, dropped = region_candidates(
            sample.instances, sample.instance_meta,
            split_components=params.split_components, min_area=params.min_area)
        if len(masks) == 0:
            raise BadInput(sample.meta.get("image_file", item.key),
                           f"no region left (instances: {len(sample.instances)}, "
                           f"min_area {params.min_area})", key=item.key)
        t2 = time.perf_counter()
        # the source's own drops (duplicates, score filters) first, then min_area's
        dropped = sample.meta.get("dropped", []) + dropped
        info = {**sample.meta, "dropped": dropped}
        image_bytes = sample.image_bytes
        if sample.image_ext == "jpg" and params.jpeg_restarts:
            try:
                image_bytes = images.add_restart_markers(image_bytes, params.jpeg_restarts)
            except ValueError:
                pass  # one libjpeg-turbo cannot re-code stays as it is: only slower to crop
        members = schema.encode_record(sample.key, image_bytes, sample.image_ext,
                                       sample.size, masks, meta, sample.ignore, info,
                                       params.coding, params.dt_expand)
        t3 = time.perf_counter()
    except BadInput as e:
        return {"key": e.key or item.key, "file": e.file, "reason": e.reason}
    except Exception as e:  # a file no reader foresaw must not end a long run
        return {"key": item.key, "file": str(next(iter(item.files.values()), item.key)),
                "reason": f"unexpected {type(e).__name__}: {e}"}
    rec_meta = schema.decode_meta(members)
    checksum = schema.checksum(members)
    notes = {"source": sample.meta["source"], "mask_encoding": sample.mask_encoding,
             "dropped": dict(Counter(d.get("kind", "min_area") for d in dropped)),
             **({"resized_from": resized_from} if resized_from else {})}
    return {"key": sample.key, "members": members, "checksum": checksum, "notes": notes,
            "rows": idx.region_rows(rec_meta, "", checksum),
            "timings": {"load": t1 - t0, "regions": t2 - t1, "encode": t3 - t2}}


def _task(task: tuple) -> dict[str, Any]:
    item, fmt, params = task
    if isinstance(item, BadInput):
        res = {"key": item.key or "", "file": item.file, "reason": item.reason}
    else:
        res = make_record(item, fmt, params)
    res["input"] = _input_id(item)
    return res


def _input_id(item: sources.SourceItem | BadInput) -> str:
    """Identity of an input for --resume: an item by its key, a scan reject by key and file."""
    if isinstance(item, sources.SourceItem):
        return f"item:{item.key}"
    return f"scan:{item.key or ''}:{item.file}"


def _unique_keys(items):
    """Turn a repeated record key into a reject: two files must never overwrite each other."""
    seen: set[str] = set()
    for item in items:
        if isinstance(item, sources.SourceItem):
            if item.key in seen:
                item = BadInput(next(iter(item.files.values())),
                                f"another input already has record key {item.key!r}",
                                key=item.key)
            else:
                seen.add(item.key)
        yield item


# The names a prepare run writes (with their temporary ``.tmp`` twins): --overwrite deletes these
# and refuses a folder that holds anything else.
OWNED = (schema.shard_glob() + "*", idx.INDEX_FILE + "*", idx.REJECTS_FILE + "*",
         idx.MANIFEST_FILE + "*", PARTS_DIR)


def _prepare_out(out: Path, run: dict[str, Any], resume: bool, overwrite: bool
                 ) -> list[dict[str, Any]]:
    """Check the output folder against the run; returns the finished parts to keep."""
    run_file = out / PARTS_DIR / RUN_FILE
    if resume and run_file.is_file():
        previous = idx.read_json(run_file)
        if previous != run:
            changed = sorted(k for k in set(run) | set(previous) if run.get(k) != previous.get(k))
            raise PrepareError(f"{out}: --resume with other settings than the interrupted run "
                               f"(differs in: {', '.join(changed)}); use the same settings or "
                               "--overwrite")
        return finished_parts(out)
    outdir.clear(out, OWNED, overwrite=overwrite,
                 hint="use --resume to continue an interrupted run or --overwrite to start again")
    (out / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    idx.write_json(run, run_file)
    return []


def prepare(source: str | Path | None, out: str | Path, *, format: str | None = None,
            params: RecordParams = RecordParams(), source_options: dict[str, Any] | None = None,
            workers: int | None = None, shard_size: int = 256_000_000, shard_count: int = 10_000,
            resume: bool = False, overwrite: bool = False, strict: bool = False,
            progress: bool = True, executor=None) -> PrepareResult:
    """Convert a dataset into shards under ``out``; see the README for the layout.

    ``executor``: any ``concurrent.futures.Executor`` to use instead of the built-in choice
    (``workers`` <= 1: this process; else a process pool of ``workers``).
    """
    out = Path(out)
    options = dict(source_options or {})
    if params.jpeg_restarts and not images.restart_markers_available():
        warnings.warn("JPEGs are stored untouched (no restart markers): the iis_pipe._jpegwindow "
                      "extension is not built; the training stream will decode more of each "
                      "image", stacklevel=2)
        params = replace(params, jpeg_restarts=0)
    if format is None and (source is None or str(source) == "toy"):
        format = "toy"  # the built-in synthetic source needs no folder
    fmt = format or sources.detect_format(Path(source))
    src = sources.get_format(fmt)
    root = None if fmt == "toy" or source is None else str(Path(source).resolve())
    run = {"schema": schema.SCHEMA_VERSION, "format": fmt, "source": root,
           "options": {k: str(v) for k, v in sorted(options.items())}, "params": asdict(params),
           "shard_size": shard_size, "shard_count": shard_count}
    sources.check_options(src, options)
    # Scan before touching the output folder: a bad source or option leaves nothing behind.
    inputs = list(_unique_keys(src.scan(None if root is None else Path(root), **options)))
    with outdir.locked(out):  # one writer at a time; the lock dies with its process
        parts = _prepare_out(out, run, resume, overwrite)
        done = {f"item:{r['key']}" for p in parts for r in p["records"]} | {
            r["input"] for p in parts for r in p["rejects"]}
        todo = [it for it in inputs if _input_id(it) not in done]

        if workers is None and executor is None and len(todo) < SMALL_RUN:
            workers = 1  # starting worker processes would cost more than they save
        writer = PartWriter(out, first_part=len(parts), max_bytes=shard_size, max_count=shard_count)
        timings: Counter = Counter()
        t_start = time.perf_counter()
        bar = tqdm(total=len(todo), disable=not progress, unit="img", desc=f"prepare {fmt}")
        try:
            with (make_executor(workers) if executor is None else nullcontext(executor)) as ex:
                tasks = ((it, fmt, params) for it in todo)
                for res in ordered_map(_task, tasks, ex):
                    if "reason" in res:
                        if strict:
                            raise PrepareError(f"{res['file']}: {res['reason']} (--strict)")
                        writer.add_reject(res["key"], res["file"], res["reason"], res["input"])
                    else:
                        t0 = time.perf_counter()
                        writer.add_record(res["key"], res["members"], res["rows"], res["checksum"],
                                          res["notes"])
                        timings["write"] += time.perf_counter() - t0
                        timings.update(res["timings"])
                    bar.update()
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - t_start
        return finish(out, run, len(inputs), len(todo), seconds, dict(timings))


def finish(out: Path, run: dict[str, Any], n_inputs: int, processed: int, seconds: float,
           timings: dict[str, float]) -> PrepareResult:
    """Gather the parts into ``index.parquet``, ``rejects.parquet`` and ``manifest.json``."""
    parts = finished_parts(out)
    rows = [r for p in parts for r in p["regions"]]
    rejects = [r for p in parts for r in p["rejects"]]
    records = [r for p in parts for r in p["records"]]
    if len(records) + len(rejects) != n_inputs:
        raise PrepareError(f"{out}: {n_inputs} inputs but {len(records)} records + "
                           f"{len(rejects)} rejects; the folder holds parts of another run")
    idx.write_table(rows, idx.INDEX_SCHEMA, out / idx.INDEX_FILE)
    idx.write_table(rejects, idx.REJECTS_SCHEMA, out / idx.REJECTS_FILE)
    member_bytes: Counter = Counter()
    for r in records:
        member_bytes.update(r["member_bytes"])
    byte_sums = {"image": sum(member_bytes[s] for s in schema.IMAGE_SUFFIXES),
                 "regions": member_bytes[schema.RUNS], "ignore": member_bytes[schema.IGNORE],
                 "dt": member_bytes[schema.DT],
                 "meta": member_bytes[schema.META] + member_bytes[schema.TABLE]
                 + member_bytes[schema.REGION_META]}
    byte_sums["total"] = sum(byte_sums.values())
    reasons = Counter(_reason_kind(r["reason"]) for r in rejects)
    shards = [{"shard": p["shard"], "records": len(p["records"]), "bytes": p["bytes"]}
              for p in parts if p["shard"]]
    manifest = {**run, "counts": {"inputs": n_inputs, "records": len(records),
                                  "regions": len(rows), "rejects": len(rejects)},
                "reject_reasons": dict(reasons), "bytes": byte_sums, "shards": shards,
                "mask_encoding": mask_encodings(records)}
    dropped: Counter = Counter()
    for r in records:
        dropped.update(r.get("notes", {}).get("dropped", {}))
    manifest["dropped"] = dict(sorted(dropped.items()))
    if run["params"].get("max_side"):
        manifest["resized"] = resized_summary(records, run["params"]["max_side"])
    idx.write_json(manifest, out / idx.MANIFEST_FILE)
    return PrepareResult(out=out, inputs=n_inputs, records=len(records), regions=len(rows),
                         rejects=len(rejects), reject_reasons=dict(reasons), bytes=byte_sums,
                         seconds=seconds, processed=processed, shards=len(shards),
                         timings=timings, mask_encoding=manifest["mask_encoding"],
                         resized=manifest.get("resized"), dropped=manifest["dropped"])


def resized_summary(records: list[dict[str, Any]], max_side: int) -> dict[str, Any]:
    """What ``--max-side`` did, for the manifest: it is lossy, so it says so."""
    n = sum(1 for r in records if r.get("notes", {}).get("resized_from"))
    return {"max_side": max_side, "records": n, "lossy": True, "jpeg_quality": JPEG_QUALITY,
            "note": f"{n} images with a side over {max_side} px were shrunk (area resampling) and "
                    f"re-encoded (JPEG quality {JPEG_QUALITY}): lossy; masks resampled by area, "
                    "kept where at least half covered"}


def mask_encodings(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{source: {mask encoding: records}}`` from the sidecars' record notes."""
    found: dict[str, Counter] = {}
    for r in records:
        notes = r.get("notes", {})
        found.setdefault(notes.get("source", "?"), Counter())[notes.get("mask_encoding") or "unknown"] += 1
    return {source: dict(sorted(c.items())) for source, c in sorted(found.items())}


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: the text before any parenthesised detail."""
    return reason.split(" (")[0]
