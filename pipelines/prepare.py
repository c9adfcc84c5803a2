"""``prepare``: a segmentation dataset on disk -> webdataset shards of records + parquet index.

sources (scan, load) -> regions (candidates) -> records (encode) -> shards (parts) -> index.
Work over images runs on an executor; results are written in input order, so shard contents
do not depend on the worker count and an interrupted run resumes to the very same index. With
``shard_inputs`` every shard is fixed in advance (N inputs each) and made by ``write_part`` on
its own: in this process, a local pool, or one task per shard on a Dask cluster. The output
folder may be an fsspec URL (``iis_pipe.storage``).
"""

from __future__ import annotations

import fnmatch
import math
import time
import uuid
import warnings
from contextlib import nullcontext
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from iis_pipe import images, outdir, sources
from iis_pipe.errors import BadInput, FolderNotEmpty, IISError
from iis_pipe.records import schema
from iis_pipe.records.distances import DistanceCoding
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.sources.resize import JPEG_QUALITY, limit_side
from iis_pipe.shards import index as idx
from iis_pipe.shards.writer import PARTS_DIR, RUN_FILE, PartWriter, finished_parts
from iis_pipe.storage import Store, store
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
    # JPEGs stored untouched get their entry-point index (False: records without it, the
    # layout of schema 5's; the stream then entropy-decodes every row above a window)
    jpeg_index: bool = True
    # 0: images keep their size. N: larger images are shrunk once so their longer side is N,
    # the JPEG re-encoded (lossy; sources/resize.py)
    max_side: int = 0

    @property
    def coding(self) -> DistanceCoding:
        return DistanceCoding(step=self.dt_step, clip=self.dt_clip)


@dataclass
class PrepareResult:
    out: Path | str  # a local folder, or the URL of one on a store
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
            sample.instance_masks, sample.instance_meta,
            split_components=params.split_components, min_area=params.min_area)
        if len(masks) == 0:
            raise BadInput(sample.meta.get("image_file", item.key),
                           f"no region left (instances: {len(sample.instance_masks)}, "
                           f"min_area {params.min_area})", key=item.key)
        t2 = time.perf_counter()
        # the source's own drops (duplicates, score filters) first, then min_area's
        dropped = sample.meta.get("dropped", []) + dropped
        info = {**sample.meta, "dropped": dropped}
        image_bytes, jpeg_index = sample.image_bytes, None
        if sample.image_ext == "jpg" and params.jpeg_restarts:
            try:
                image_bytes = images.add_restart_markers(image_bytes, params.jpeg_restarts)
            except ValueError:
                pass  # one libjpeg-turbo cannot re-code stays as it is: only slower to crop
        if params.jpeg_index and sample.image_ext == "jpg" and image_bytes is sample.image_bytes:
            # untouched: the stream starts decoding at a window's MCU row instead of the top
            jpeg_index = images.jpeg_entry_index(image_bytes)
        members = schema.encode_record(sample.key, image_bytes, sample.image_ext,
                                       sample.size, masks, meta, sample.ignore, info,
                                       params.coding, params.dt_expand, jpeg_index)
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
_HINT = "use --resume to continue an interrupted run or --overwrite to start again"


def _prepare_out(out: Store, run: dict[str, Any], resume: bool, overwrite: bool
                 ) -> list[dict[str, Any]]:
    """Check the output folder against the run; returns the finished parts to keep."""
    run_file = f"{PARTS_DIR}/{RUN_FILE}"
    if resume and out.exists(run_file):
        previous = idx.read_json(out.name(run_file), out.read_bytes(run_file))
        if previous != run:
            changed = sorted(k for k in set(run) | set(previous) if run.get(k) != previous.get(k))
            raise PrepareError(f"{out.url}: --resume with other settings than the interrupted "
                               f"run (differs in: {', '.join(changed)}); use the same settings "
                               "or --overwrite")
        return finished_parts(out)
    if out.local is not None:
        outdir.clear(out.local, OWNED, overwrite=overwrite, hint=_HINT)
        (out.local / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    else:
        _clear_store(out, overwrite)
    out.write_bytes(run_file, idx.json_bytes(run))
    return []


def _clear_store(out: Store, overwrite: bool) -> None:
    """``outdir.clear`` for a prefix on an object store: nothing there, or with ``overwrite``
    only an earlier run's objects (deleted), else ``FolderNotEmpty``."""
    found = out.files()
    if not found:
        return
    if not overwrite:
        raise FolderNotEmpty(f"{out.url} is not empty: {_HINT}")
    foreign = sorted({n.split("/")[0] for n in found} - {
        top for n in found for top in [n.split("/")[0]]
        if any(fnmatch.fnmatch(top, pat) for pat in OWNED)})
    if foreign:
        raise FolderNotEmpty(f"{out.url}: --overwrite deletes only an earlier run's files, and "
                             f"the prefix also holds {', '.join(foreign[:5])}; nothing was "
                             "deleted: move those or choose another prefix")
    for name in found:
        out.remove(name)


def _pool(workers: int | None, executor, n: int):
    """The executor to map ``n`` inputs on: the caller's, else a local pool (one process for a
    small run: starting worker processes would cost more than they save)."""
    if executor is not None:
        return nullcontext(executor)
    return make_executor(1 if workers is None and n < SMALL_RUN else workers)


def _add(writer: PartWriter, res: dict[str, Any], timings: Counter, strict: bool) -> None:
    """Put one ``_task`` result into the open part (a reject ends a ``strict`` run)."""
    if strict and "reason" in res:
        raise PrepareError(f"{res['file']}: {res['reason']} (--strict)")
    if "reason" in res:
        writer.add_reject(res["key"], res["file"], res["reason"], res["input"])
        return
    t0 = time.perf_counter()
    writer.add_record(res["key"], res["members"], res["rows"], res["checksum"], res["notes"])
    timings["write"] += time.perf_counter() - t0
    timings.update(res["timings"])


@dataclass(frozen=True)
class PartTask:
    """One shard of a planned run (``shard_inputs``): its inputs, written as part ``part``."""

    out: Store
    part: int
    items: tuple
    fmt: str
    params: RecordParams
    strict: bool = False


def write_part(task: PartTask) -> dict[str, Any]:
    """The unit of a distributed run: encode the part's inputs in order and publish its shard,
    then its sidecar, in the output folder. Returns ``{"part", "inputs", "timings"}``, or with
    ``strict`` and a bad input ``{"part", "strict": message}`` having written nothing."""
    writer = PartWriter(task.out, first_part=task.part, max_bytes=math.inf, max_count=math.inf)
    timings: Counter = Counter()
    try:
        for item in task.items:
            res = _task((item, task.fmt, task.params))
            if task.strict and "reason" in res:
                writer.abort()
                return {"part": task.part, "strict": f"{res['file']}: {res['reason']}"}
            _add(writer, res, timings, strict=False)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return {"part": task.part, "inputs": len(task.items), "timings": dict(timings)}


def failed_part(task: PartTask, reason: str) -> None:
    """Record every input of a part whose task kept failing as a reject with ``reason``."""
    task.out.remove(schema.shard_name(task.part))  # a shard published before the failure
    writer = PartWriter(task.out, first_part=task.part)
    for item in task.items:
        if isinstance(item, BadInput):  # a scan reject keeps its own reason
            writer.add_reject(item.key or "", item.file, item.reason, _input_id(item))
        else:
            writer.add_reject(item.key, str(next(iter(item.files.values()), item.key)), reason,
                              _input_id(item))
    writer.close()


def prepare(source: str | Path | None, out: str | Path, *, format: str | None = None,
            params: RecordParams = RecordParams(), source_options: dict[str, Any] | None = None,
            workers: int | None = None, shard_size: int = 256_000_000, shard_count: int = 10_000,
            shard_inputs: int | None = None, cluster: Any = None, retries: int = 2,
            storage_options: dict[str, Any] | None = None,
            resume: bool = False, overwrite: bool = False, strict: bool = False,
            progress: bool = True, executor=None) -> PrepareResult:
    """Convert a dataset into shards under ``out`` (a folder or an fsspec URL such as
    ``s3://bucket/prefix``, opened with ``storage_options``); see the README for the layout.

    ``shard_inputs``: shard ``k`` holds the records of inputs ``[k N, (k + 1) N)`` (the size
    and count caps then do not apply), so every shard can be made on its own: one task each.
    ``cluster``: run those tasks on Dask (a scheduler address, ``"local:N"`` for a local
    cluster of N processes, or a ``distributed.Client``); a task that fails or whose worker
    dies is tried ``retries`` more times, then its inputs become rejects with the reason. The
    output equals a local run's with the same settings, byte for byte.
    ``executor``: any ``concurrent.futures.Executor`` to use instead of the built-in choice
    (``workers`` <= 1: this process; else a process pool of ``workers``).
    """
    out_store = store(out, storage_options)
    options = dict(source_options or {})
    if shard_inputs is not None and shard_inputs < 1:
        raise ValueError(f"shard_inputs must be at least 1, not {shard_inputs}")
    if cluster is not None and shard_inputs is None:
        raise ValueError("a cluster run needs shard_inputs (inputs per shard, one task each)")
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, not {retries}")
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
    if shard_inputs is not None:
        run["shard_inputs"] = shard_inputs
    sources.check_options(src, options)
    # Scan before touching the output folder: a bad source or option leaves nothing behind.
    inputs = list(_unique_keys(src.scan(None if root is None else Path(root), **options)))
    if cluster is not None and out_store.local is not None:
        out_store = store(out_store.local.resolve())  # workers may run in another folder
    # one writer at a time (a lock that dies with its process); an object store has no such
    # lock: one run per prefix is the user's to keep
    with outdir.locked(out_store.local) if out_store.local is not None else nullcontext():
        parts = _prepare_out(out_store, run, resume, overwrite)
        timings: Counter = Counter()
        t_start = time.perf_counter()
        if shard_inputs is None:
            processed = _run_sequential(out_store, inputs, parts, fmt, params, shard_size,
                                        shard_count, workers, executor, strict, progress, timings)
        else:
            done = {p["part"] for p in parts}
            tasks = [PartTask(out_store, k, tuple(inputs[i:i + shard_inputs]), fmt, params,
                              strict)
                     for k, i in enumerate(range(0, len(inputs), shard_inputs)) if k not in done]
            bar = tqdm(total=sum(len(t.items) for t in tasks), disable=not progress,
                       unit="img", desc=f"prepare {fmt}")
            try:
                if cluster is not None:
                    from iis_pipe.pipelines.executors import dask_client

                    with dask_client(cluster, retries) as client:
                        _run_on_dask(client, tasks, retries, bar, timings)
                else:
                    _run_planned(out_store, tasks, workers, executor, bar, timings)
            finally:
                bar.close()
            processed = sum(len(t.items) for t in tasks)
        seconds = time.perf_counter() - t_start
        return finish(out_store, run, len(inputs), processed, seconds, dict(timings))


def _run_sequential(out: Store, inputs: list, parts: list[dict[str, Any]], fmt: str,
                    params: RecordParams, shard_size: int, shard_count: int,
                    workers: int | None, executor, strict: bool, progress: bool,
                    timings: Counter) -> int:
    """Records in input order into shards closed by the size and count caps; returns the
    number of inputs processed (those not done by an interrupted run)."""
    done = {f"item:{r['key']}" for p in parts for r in p["records"]} | {
        r["input"] for p in parts for r in p["rejects"]}
    todo = [it for it in inputs if _input_id(it) not in done]
    writer = PartWriter(out, first_part=len(parts), max_bytes=shard_size, max_count=shard_count)
    bar = tqdm(total=len(todo), disable=not progress, unit="img", desc=f"prepare {fmt}")
    try:
        with _pool(workers, executor, len(todo)) as ex:
            tasks = ((it, fmt, params) for it in todo)
            for res in ordered_map(_task, tasks, ex):
                _add(writer, res, timings, strict)
                bar.update()
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return len(todo)


def _run_planned(out: Store, tasks: list[PartTask], workers: int | None, executor, bar,
                 timings: Counter) -> None:
    """The planned parts in this process or a local pool: images in parallel, each part
    closed at its last input (the same bytes as ``write_part``)."""
    writer = PartWriter(out, max_bytes=math.inf, max_count=math.inf)
    try:
        with _pool(workers, executor, sum(len(t.items) for t in tasks)) as ex:
            jobs = ((t, (it, t.fmt, t.params)) for t in tasks for it in t.items)
            current = None
            for task, res in ordered_map(_tagged_task, jobs, ex):
                if task.part != current:
                    writer.finish_part()
                    writer.part, current = task.part, task.part
                _add(writer, res, timings, task.strict)
                bar.update()
        writer.close()
    except BaseException:
        writer.abort()
        raise


def _tagged_task(job: tuple) -> tuple:
    task, args = job
    return task, _task(args)


def _run_on_dask(client, tasks: list[PartTask], retries: int, bar, timings: Counter) -> None:
    """One Dask task per part; the parts' results arrive in any order (each is a complete
    part in the output folder). A part still failing after ``retries`` becomes rejects."""
    from distributed import as_completed

    if not tasks:
        return
    run_id = uuid.uuid4().hex[:8]
    # one call for all tasks: the scheduler then sees the whole group and queues it, giving
    # each worker thread one part at a time
    futures = client.map(write_part, tasks, retries=retries, pure=False,
                         key=[f"iis-pipe-part-{t.part:06d}-{run_id}" for t in tasks])
    by_future = dict(zip(futures, tasks))
    try:
        for fut in as_completed(list(by_future)):
            task = by_future[fut]
            try:
                res = fut.result()
            except Exception as e:  # the task's own error or a lost worker, after the retries
                failed_part(task, f"shard task failed, retries spent "
                                  f"({type(e).__name__}: {e})")
                res = {"inputs": len(task.items), "timings": {}}
            if "strict" in res:
                raise PrepareError(f"{res['strict']} (--strict)")
            timings.update(res["timings"])
            bar.update(res["inputs"])
    finally:
        for fut in by_future:
            fut.cancel()


def finish(out: Store, run: dict[str, Any], n_inputs: int, processed: int, seconds: float,
           timings: dict[str, float]) -> PrepareResult:
    """Gather the parts into ``index.parquet``, ``rejects.parquet`` and ``manifest.json``."""
    parts = finished_parts(out)
    rows = [r for p in parts for r in p["regions"]]
    rejects = [r for p in parts for r in p["rejects"]]
    records = [r for p in parts for r in p["records"]]
    if len(records) + len(rejects) != n_inputs:
        raise PrepareError(f"{out.url}: {n_inputs} inputs but {len(records)} records + "
                           f"{len(rejects)} rejects; the folder holds parts of another run")
    out.write_bytes(idx.INDEX_FILE, idx.table_bytes(rows, idx.INDEX_SCHEMA))
    out.write_bytes(idx.REJECTS_FILE, idx.table_bytes(rejects, idx.REJECTS_SCHEMA))
    member_bytes: Counter = Counter()
    for r in records:
        member_bytes.update(r["member_bytes"])
    byte_sums = {"image": sum(member_bytes[s] for s in schema.IMAGE_SUFFIXES),
                 "jpeg_index": member_bytes[schema.JPEG_INDEX],
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
    out.write_bytes(idx.MANIFEST_FILE, idx.json_bytes(manifest))
    return PrepareResult(out=out.local if out.local is not None else out.url, inputs=n_inputs,
                         records=len(records), regions=len(rows), rejects=len(rejects),
                         reject_reasons=dict(reasons), bytes=byte_sums, seconds=seconds,
                         processed=processed, shards=len(shards),
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
