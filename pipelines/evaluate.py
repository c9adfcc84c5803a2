"""``evaluate``: the standard click protocol over prepared shards or dataset folders.

Per object (a region of a record, or the union of a record's regions): no clicks and an all-zero
previous output to start; then for k = 1..max_clicks the robot (``standard`` unless
``Protocol.robot`` names another of ``clicking.ROBOTS``; random ones draw from a generator seeded
by the protocol's seed, the dataset, the key and the object) clicks on the errors of the current
mask, the predictor gets the image, all clicks and its previous output
(probabilities), and IoU(gt, probs > threshold) is taken with ignore pixels excluded (RITM's
``evaluate_sample`` with ``pred_thr=0.49``). Every object runs all max_clicks clicks, for the
mIoU curve; NoC/NoF follow ``iis_pipe.metrics.noc``. A robot that finds no error pixel left
ends the session's clicks; the last IoU stands for the remaining ones.

Beside the iterative protocol, ``Protocol.at_once`` (e.g. ``(1, 3, 5)``) adds SAM's "k points at
once" (``run_at_once``): one prediction from k positive points given together, from an empty
previous output: the standard first click (the object pixel farthest from its boundary) and
k - 1 pixels drawn uniformly from the object (ignore pixels excluded), seeded as above.

``wrappers`` (``iis_pipe.predictors.wrappers``: zoom-in, fixed crop, flip) wrap the predictor in
every worker; their full options go into ``summary.json``.

With ``clicks`` (a click file, ``iis_pipe.clicking.clickfile``) the objects it names get its
clicks instead of the robot's, the rest is the same; an object given fewer than max_clicks
clicks keeps its last IoU for the clicks after (no click, no change), and objects the file does
not name are not evaluated.

Outputs in ``out``: ``samples.parquet`` (one row per object: dataset, key, object index, image
file, area, the K IoUs, NoC@85/90/95, the clicks as JSON ``[[y, x, positive], ...]``, seconds,
the at-once IoUs (one per ``Protocol.at_once`` k, null without), and ``error``, the reason, on
a failed input or object, whose IoUs are null), ``summary.json``
(per dataset metrics, failures, wall seconds; protocol, predictor) and ``miou.png`` (mIoU per
click of this run's datasets and of the ``plot_with`` runs).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Sequence

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from iis_pipe import outdir, sources
from iis_pipe.clicking import ROBOTS, Click, standard
from iis_pipe.clicking.clickfile import ObjectClicks, read_clicks
from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import unbox
from iis_pipe.images import decode_image
from iis_pipe.metrics import THRESHOLDS, iou, noc, summarize
from iis_pipe.metrics.plots import plot_miou
from iis_pipe.predictors import Predictor, make_predictor
from iis_pipe.predictors.wrappers import resolve as resolve_wrappers, wrap
from iis_pipe.records import schema
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.shards import index as idx
from iis_pipe.shards.tar import iter_shard
from iis_pipe.storage import is_url, store
from iis_pipe.stream.urls import expand_urls
from iis_pipe.pipelines.executors import default_workers, make_executor, ordered_map

SAMPLES_FILE, SUMMARY_FILE, PLOT_FILE = "samples.parquet", "summary.json", "miou.png"
OBJECTS = ("regions", "union")
_NOC = [f"noc{round(100 * t)}" for t in THRESHOLDS]
SAMPLES_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("key", pa.string()), ("object", pa.int32()), ("file", pa.string()),
    ("area", pa.int64()), ("ious", pa.list_(pa.float64())), *[(c, pa.int32()) for c in _NOC],
    ("clicks", pa.string()), ("seconds", pa.float64()), ("at_once", pa.list_(pa.float64())),
    ("error", pa.string()),
])


@dataclass(frozen=True)
class Protocol:
    """The click protocol: ``max_clicks`` per object from ``robot``, mask = ``probs >
    threshold``; ``at_once``: the k of the k-points-at-once protocol run beside it."""

    max_clicks: int = 20
    threshold: float = 0.49
    objects: str = "regions"  # "regions": each region; "union": all regions of a record as one
    robot: str = "standard"   # a name in iis_pipe.clicking.ROBOTS
    seed: int = 0             # random robots and the at-once points
    at_once: tuple[int, ...] = ()

    def __post_init__(self):
        if self.objects not in OBJECTS:
            raise ValueError(f"objects must be one of {OBJECTS}, got {self.objects!r}")
        if self.max_clicks < 1:
            raise ValueError(f"max_clicks must be >= 1, got {self.max_clicks}")
        if self.robot not in ROBOTS:
            raise ValueError(f"robot must be one of {', '.join(ROBOTS)}, got {self.robot!r}")
        object.__setattr__(self, "at_once", tuple(int(k) for k in self.at_once))
        if any(k < 1 for k in self.at_once):
            raise ValueError(f"at_once counts must be >= 1, got {self.at_once}")


def object_rng(protocol: Protocol, dataset: str, key: str, obj: int) -> np.random.Generator:
    """The generator of one object's random clicks: the same in any worker and any order."""
    return np.random.default_rng([protocol.seed, zlib.crc32(f"{dataset}/{key}".encode()), obj])


def run_object(predictor: Predictor, image: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None,
               protocol: Protocol = Protocol(), given: Sequence[Click] | None = None,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[Click], float]:
    """One object's session: ``(ious (K,) float64, the clicks (K, fewer when a robot finds no
    error left or fewer are given), seconds)``; ``image (H, W, 3) uint8``, ``gt`` and ``ignore``
    ``(H, W) bool``; ``rng`` for a random robot. ``seconds`` covers the whole of every click
    (robot, predictor, IoU). IoUs stay float64 so that an exact 0.9 meets the 0.9 threshold.

    ``given``: these clicks (at most K) instead of the robot's; the IoU after the last one is
    repeated up to K (``ValueError`` for a click outside the image)."""
    h, w = gt.shape
    robot = ROBOTS[protocol.robot]
    rng = np.random.default_rng(protocol.seed) if rng is None else rng
    if given is not None:
        if not 0 < len(given) <= protocol.max_clicks:
            raise ValueError(f"{len(given)} clicks given, expected 1 to {protocol.max_clicks}")
        outside = [c for c in given if not (0 <= c.y < h and 0 <= c.x < w)]
        if outside:
            raise ValueError(f"click {list(outside[0])} outside the {h}x{w} image")
    probs = np.zeros((h, w), np.float32)
    pred = np.zeros((h, w), bool)
    clicks: list[Click] = []
    ious = np.zeros(protocol.max_clicks, np.float64)
    t0 = time.perf_counter()
    steps = protocol.max_clicks if given is None else len(given)
    for k in range(steps):
        click = robot(gt, pred, ignore, clicks, rng) if given is None else given[k]
        if click is None:  # nothing left to correct: the mask stands
            ious[k:] = ious[k - 1] if k else iou(gt, pred, ignore)
            break
        clicks.append(click)
        probs = np.asarray(predictor(image, clicks, probs), np.float32)
        if probs.shape != (h, w):
            raise ValueError(f"predictor returned {probs.shape}, expected {(h, w)}")
        pred = probs > protocol.threshold
        ious[k] = iou(gt, pred, ignore)
    ious[steps:] = ious[steps - 1]
    return ious, clicks, time.perf_counter() - t0


def run_at_once(predictor: Predictor, image: np.ndarray, gt: np.ndarray,
                ignore: np.ndarray | None, ks: Sequence[int], rng: np.random.Generator,
                threshold: float = 0.49) -> list[float]:
    """IoU of one prediction from k points at once, for each k of ``ks`` (see the module doc):
    the standard first click, then k - 1 object pixels drawn uniformly (positive clicks)."""
    h, w = gt.shape
    first = standard(gt, np.zeros((h, w), bool), ignore, [])
    inside = gt if ignore is None else gt & ~ignore
    ys, xs = np.nonzero(inside)
    extra = rng.integers(0, len(ys), max(ks) - 1) if len(ys) and max(ks) > 1 else []
    points = [first] + [Click(int(ys[i]), int(xs[i]), True) for i in extra]
    out = []
    for k in ks:
        probs = np.asarray(predictor(image, points[:k], np.zeros((h, w), np.float32)))
        out.append(iou(gt, probs > threshold, ignore))
    return out


# --- inputs: each image becomes a picklable job, loaded in the worker -----------------------

@dataclass(frozen=True)
class _Job:
    dataset: str
    kind: str      # "item": a source item; "record": shard members; "bad": a failed input
    payload: Any   # (format, SourceItem) | (shard, key, members) | BadInput


def is_prepared(source: str | Path) -> bool:
    """``source`` names shards (a prepared folder, a ``.tar``, a glob or brace list of them)
    rather than a dataset folder."""
    text = str(source)
    if is_url(text):  # only prepared datasets live behind URLs
        return True
    p = Path(text)
    if p.is_dir():
        return (p / idx.MANIFEST_FILE).is_file() or any(p.glob(schema.shard_glob()))
    return text.endswith(".tar") or any(c in text for c in "*?[{")


def dataset_name(source: str | Path) -> str:
    """A short name for tables and plots: the folder's (or the shards' folder's) name."""
    text = str(source).rstrip("/")
    if is_url(text):
        parts = text.split("/")
        return (parts[-2] if text.endswith(".tar") or "*" in parts[-1] else parts[-1]) or text
    p = Path(text)
    return (p.parent.name if not p.is_dir() and is_prepared(source) else p.name) or str(source)


def _jobs(source: str | Path, dataset: str, format: str | None, options: dict[str, Any],
          limit: int | None, keys: Collection[str] | None = None
          ) -> tuple[Iterator[_Job], int | None]:
    """Jobs of one source and their count (None when unknown before reading); ``keys``: only
    the images with these keys."""
    if is_prepared(source):
        if format is not None or options:
            raise ValueError(f"{source}: prepared shards take no --format or source options "
                             "(they were applied by prepare)")
        urls = expand_urls(str(source))
        root = store(source)
        bad: list[_Job] = []
        total = None
        if (root.local is None or root.local.is_dir()) and root.exists(idx.MANIFEST_FILE):
            # prepare's rejects are this set's failures too: nothing vanishes between the steps
            bad = [_Job(dataset, "bad", BadInput(r["file"], r["reason"], r["key"]))
                   for r in idx.read_rejects(root).to_pylist()]
            total = idx.read_manifest(root)["counts"]["records"] + len(bad)

        def records() -> Iterator[_Job]:
            for url in urls:
                try:
                    for key, members in iter_shard(url):
                        yield _Job(dataset, "record", (url, key, members))
                except BadInput as e:
                    yield _Job(dataset, "bad", e)
            yield from bad

        jobs, count = records(), total
    else:
        fmt = sources.get_format(format or sources.detect_format(Path(source)))
        sources.check_options(fmt, options)
        items = list(fmt.scan(Path(source), **options))
        jobs = (_Job(dataset, "bad", it) if isinstance(it, BadInput)
                else _Job(dataset, "item", (fmt.name, it)) for it in items)
        count = len(items)
    if keys is not None:
        jobs = (j for j in jobs if _job_key(j) in keys)
        count = None  # the progress bar's total: unknown before the keys are met
    if limit is not None:
        jobs = islice(jobs, limit)
        count = limit if count is None else min(count, limit)
    return jobs, count


def _job_key(job: _Job) -> str | None:
    if job.kind == "bad":
        return job.payload.key
    return job.payload[1].key if job.kind == "item" else job.payload[1]


def _load(job: _Job) -> tuple[str, str, np.ndarray, np.ndarray, np.ndarray]:
    """``(key, image file, image (H, W, 3) uint8, regions (R, H, W) bool, ignore (H, W) bool)``;
    raises ``BadInput`` for an unusable input."""
    if job.kind == "bad":
        raise job.payload
    if job.kind == "item":
        fmt, item = job.payload
        sample = sources.get_format(fmt).load(item)
        # The same regions prepare would store with its defaults, so both inputs agree.
        regions = unbox(region_candidates(sample.instance_masks, sample.instance_meta)[0],
                        sample.size)
        file = sample.meta.get("image_file", item.key)
        return (sample.key, file, decode_image(sample.image_bytes, sample.image_ext), regions,
                sample.ignore)
    shard, key, members = job.payload
    try:
        rec = schema.decode_record(members)
    except (ValueError, KeyError) as e:
        raise BadInput(shard, f"record does not decode ({e})", key) from None
    file = rec.meta["image"].get("file") or f"{shard}:{key}"
    return rec.key, file, rec.image, rec.regions, rec.ignore


# --- workers ---------------------------------------------------------------------------------

_PREDICTORS: dict[Any, Predictor] = {}  # per process: build a predictor once, use it for every job


def _predictor(spec, options: dict[str, Any], single_thread: bool,
               wrappers: Sequence[tuple[str, dict[str, Any]]] = ()) -> Predictor:
    if callable(spec):
        return wrap(spec, wrappers)
    key = (spec, json.dumps(options, sort_keys=True), single_thread,
           json.dumps(list(wrappers), sort_keys=True))
    if key not in _PREDICTORS:
        _PREDICTORS[key] = wrap(make_predictor(spec, **options), wrappers)
        # One worker per core: library thread pools would only contend. Safe because pool
        # workers are spawned (a forked child can deadlock on the parent's OpenCV pool here).
        if single_thread:
            import cv2

            cv2.setNumThreads(1)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
    return _PREDICTORS[key]


def _row(dataset: str, key: str, obj: int, file: str, area: int = 0, ious=None, clicks=None,
         seconds: float = 0.0, error: str | None = None, at_once=None) -> dict[str, Any]:
    row = {"dataset": dataset, "key": key, "object": obj, "file": file, "area": area,
           "ious": None if ious is None else [float(v) for v in ious],
           "clicks": None if clicks is None else json.dumps([[c.y, c.x, int(c.positive)]
                                                              for c in clicks]),
           "seconds": seconds, "at_once": None if at_once is None else [float(v) for v in at_once],
           "error": error}
    for col, t in zip(_NOC, THRESHOLDS):
        row[col] = None if ious is None else int(noc(ious[None], t)[0])
    return row


def _evaluate_job(task: tuple) -> list[dict[str, Any]]:
    """Rows of one image's objects; any failure becomes a row with file and reason."""
    job, spec, options, protocol, single_thread, given, wrappers = task
    try:
        key, file, image, regions, ignore = _load(job)
    except BadInput as e:
        return [_row(job.dataset, e.key or "", -1, e.file, error=e.reason)]
    except Exception as e:  # an input no reader foresaw must not end the run
        return _job_failure(job, e)
    union = protocol.objects == "union" and len(regions)
    objects = regions.any(0, keepdims=True) if union else regions
    predictor = _predictor(spec, options, single_thread, wrappers)
    rows = []
    for i, gt in enumerate(objects):
        if given is not None and i not in given:
            continue
        rng = object_rng(protocol, job.dataset, key, i)
        try:
            ious, clicks, secs = run_object(predictor, image, gt, ignore, protocol,
                                            None if given is None else given[i], rng)
            at_once = (run_at_once(predictor, image, gt, ignore, protocol.at_once, rng,
                                   protocol.threshold) if protocol.at_once else None)
        except Exception as e:  # recorded and counted, never dropped
            rows.append(_row(job.dataset, key, i, file, int(gt.sum()),
                             error=f"{type(e).__name__}: {e}"))
            continue
        rows.append(_row(job.dataset, key, i, file, int(gt.sum()), ious, clicks, secs,
                         at_once=at_once))
    for i in sorted(set(given or ()) - set(range(len(objects)))):
        rows.append(_row(job.dataset, key, i, file,
                         error=f"clicks given for object {i}; the record has {len(objects)}"))
    if not rows:
        rows.append(_row(job.dataset, key, -1, file, error="no object in the record"))
    return rows


def _job_failure(job: _Job, e: BaseException) -> list[dict[str, Any]]:
    """The FAILED row of a job that raised (in a worker, or on its way to or from one)."""
    if isinstance(e, BadInput):
        return [_row(job.dataset, e.key or "", -1, e.file, error=e.reason)]
    if job.kind == "item":
        key, file = job.payload[1].key, next(iter(job.payload[1].files.values()), "")
    elif job.kind == "record":
        key, file = job.payload[1], job.payload[0]
    else:
        key, file = job.payload.key or "", job.payload.file
    return [_row(job.dataset, key, -1, str(file), error=f"unexpected {type(e).__name__}: {e}")]


# --- the run ---------------------------------------------------------------------------------

@dataclass
class EvalResult:
    out: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


def dataset_summary(rows: list[dict[str, Any]], max_clicks: int) -> dict[str, Any]:
    """Metrics of one dataset's rows: ``summarize`` over the evaluated objects, plus counts of
    failures and seconds per click (one worker's time for a whole click step)."""
    good = [r for r in rows if r["error"] is None]
    ious = np.array([r["ious"] for r in good], np.float64).reshape(len(good), max_clicks)
    clicks = len(good) * max_clicks
    return {**summarize(ious), "failed": len(rows) - len(good),
            "failures": [{"key": r["key"], "file": r["file"], "reason": r["error"]}
                         for r in rows if r["error"] is not None],
            "s_per_click": sum(r["seconds"] for r in good) / clicks if clicks else float("nan")}


def evaluate(sources_: Sequence[str | Path], out: str | Path, *,
             predictor: str | Callable = "grabcut", predictor_options: dict[str, Any] | None = None,
             format: str | None = None, source_options: dict[str, Any] | None = None,
             protocol: Protocol = Protocol(), limit: int | None = None,
             workers: int | None = None, name: str | None = None,
             plot_with: Sequence[str | Path] = (), progress: bool = True,
             clicks: str | Path | None = None,
             wrappers: Sequence[tuple[str, dict[str, Any]]] = ()) -> EvalResult:
    """Evaluate ``predictor`` (a spec for ``make_predictor``, or a picklable predictor) on each
    source and write the outputs into ``out``; see the module docstring.

    ``clicks``: a click file whose clicks replace the robot's (``read_clicks``).
    ``wrappers``: ``(name, options)`` of ``iis_pipe.predictors.wrappers`` (first innermost).
    ``format``/``source_options`` apply to dataset folders (e.g. ``merge_instances=True`` for
    DAVIS); ``limit``: the first N images of each source. Raises ``ValueError``,
    ``FileNotFoundError`` or ``TypeError`` with a message for unusable arguments, before any work.
    """
    options = dict(predictor_options or {})
    wrappers = [(n, dict(o)) for n, o in wrappers]
    recorded = resolve_wrappers(wrappers)
    _predictor(predictor, options, False, wrappers)  # fail now, not once per worker
    if not sources_:
        raise ValueError("no source to evaluate")
    names = _unique([dataset_name(s) for s in sources_])
    given = None if clicks is None else _given_clicks(read_clicks(clicks), names, protocol)
    # Every source is scanned and every --plot-with run read before any work, so that a bad
    # argument fails at once.
    plans = [(src, dataset, *_jobs(src, dataset, format, dict(source_options or {}), limit,
                                   None if given is None else given[dataset]))
             for src, dataset in zip(sources_, names)]
    previous = [read_summary(p) for p in plot_with]
    out = Path(out)
    workers = default_workers() if workers is None else workers
    with outdir.locked(out):  # one run at a time writes the folder
        all_rows: list[dict[str, Any]] = []
        summaries = []
        with make_executor(workers) as ex:
            for src, dataset, jobs, total in plans:
                t0 = time.perf_counter()
                rows = []
                tasks = ((j, predictor, options, protocol, workers > 1,
                          None if given is None else given[dataset].get(_job_key(j)), wrappers)
                         for j in jobs)
                with tqdm(total=total, disable=not progress, unit="img",
                          desc=f"evaluate {dataset}") as bar:
                    for res in ordered_map(_evaluate_job, tasks, ex, window=2 * max(workers, 1),
                                           on_error=lambda task, e: _job_failure(task[0], e)):
                        rows.extend(res)
                        bar.update()
                if given is not None:  # named in the file, never met in the source
                    seen = {r["key"] for r in rows}
                    rows.extend(_row(dataset, key, obj, "", error="clicks given for a key that is "
                                     "not in the source") for key, objs in given[dataset].items()
                                if key not in seen for obj in objs)
                summaries.append({"dataset": dataset, "source": str(src),
                                  **dataset_summary(rows, protocol.max_clicks),
                                  "seconds": time.perf_counter() - t0})
                all_rows.extend(rows)
        label = name or run_name(predictor)
        summary = {"name": label,
                   "predictor": predictor if isinstance(predictor, str) else repr(predictor),
                   "predictor_options": options, "wrappers": recorded,
                   "protocol": {**asdict(protocol), "robot": protocol.robot if clicks is None
                                else f"clicks {clicks}"},
                   "format": format, "source_options": dict(source_options or {}), "limit": limit,
                   "workers": workers, "datasets": summaries}
        out.mkdir(parents=True, exist_ok=True)
        idx.write_table(all_rows, SAMPLES_SCHEMA, out / SAMPLES_FILE)
        idx.write_json(summary, out / SUMMARY_FILE)
        if any(d["samples"] for s in (summary, *previous) for d in s["datasets"]):
            plot_runs([summary, *previous], out / PLOT_FILE)
        return EvalResult(out, summary, all_rows)


def _given_clicks(objects: Sequence[ObjectClicks], datasets: Sequence[str], protocol: Protocol
                  ) -> dict[str, dict[str, dict[int, tuple[Click, ...]]]]:
    """``{dataset: {key: {object: clicks}}}`` of a click file's objects; ``ValueError`` for an
    entry that names no source or gives more clicks than the protocol runs."""
    given: dict[str, dict[str, dict[int, tuple[Click, ...]]]] = {d: {} for d in datasets}
    for o in objects:
        if o.dataset is None and len(datasets) > 1:
            raise ValueError(f"clicks for {o.key!r} name no dataset; with several sources each "
                             f"object needs one of: {', '.join(datasets)}")
        dataset = datasets[0] if o.dataset is None else o.dataset
        if dataset not in given:
            raise ValueError(f"clicks for {o.key!r} name dataset {dataset!r}, not one of the "
                             f"sources: {', '.join(datasets)}")
        if len(o.clicks) > protocol.max_clicks:
            raise ValueError(f"clicks for {o.key!r} object {o.object}: {len(o.clicks)} clicks, "
                             f"more than --max-clicks {protocol.max_clicks}")
        objs = given[dataset].setdefault(o.key, {})
        if o.object in objs:
            raise ValueError(f"clicks for {o.key!r} object {o.object} given twice")
        objs[o.object] = o.clicks
    return given


def run_name(predictor) -> str:
    """A run's default name: "grabcut"; a checkpoint's folder and stem, so that every run's
    ``last.pt`` is told apart ("runs/hrnet18s/last.pt" -> "hrnet18s/last", "ckpt.pt" -> "ckpt");
    or the callable's name."""
    if isinstance(predictor, str):
        p = Path(predictor)
        return f"{p.parent.name}/{p.stem}" if p.suffix and p.parent.name else p.stem
    return getattr(predictor, "__name__", type(predictor).__name__)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def read_summary(run: str | Path) -> dict[str, Any]:
    """``summary.json`` of a run folder (or the file itself)."""
    path = Path(run)
    path = path / SUMMARY_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no {SUMMARY_FILE}; is it an evaluation run folder?")
    return idx.read_json(path)


def plot_runs(summaries: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """One PNG with the mIoU curve of every dataset of every run summary (ValueError when no
    dataset has an evaluated object)."""
    curves = [(f"{run_label(s)} / {d['dataset']}", d["mIoU"]) for s in summaries
              for d in s["datasets"] if d["samples"]]
    robots = sorted({s["protocol"].get("robot", "standard") for s in summaries})
    return plot_miou(curves, out, title=f"mIoU per click ({', '.join(robots)} robot)")


def run_label(summary: dict[str, Any]) -> str:
    """A run's name in tables and plots, with its robot (when not the standard one) and its
    predictor wrappers: ``grabcut +zoom_in(400) [uniform robot, seed 0]``."""
    label = summary["name"]
    for w in summary.get("wrappers", []):
        size = w.get("target_size")
        if isinstance(size, (list, tuple)):
            size = "x".join(map(str, size))
        label += f" +{w['name']}" + ("" if size is None else f"({size})")
    robot = summary["protocol"].get("robot", "standard")
    if robot != "standard":
        label += f" [{robot} robot, seed {summary['protocol'].get('seed', 0)}]"
    return label


def format_table(summaries: Sequence[dict[str, Any]]) -> str:
    """The papers' layout as a Markdown table: a row per run and dataset (mIoU after 1, 5 and
    the last click; NoF: objects whose NoC is max_clicks, see ``iis_pipe.metrics.noc``)."""
    last = max((s["protocol"]["max_clicks"] for s in summaries), default=20)
    head = ["Run", "Dataset", "NoC@85", "NoC@90", "NoC@95", "NoF@85", "NoF@90", "NoF@95",
            "mIoU@1", "mIoU@5", f"mIoU@{last}", "s/click", "objects", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for s in summaries:
        for d in s["datasets"]:
            m = d["mIoU"]
            at = [f"{m[k - 1]:.3f}" if len(m) >= k else "-" for k in (1, 5, len(m))]
            lines.append("| " + " | ".join([
                run_label(s), d["dataset"], *(f"{d[f'NoC@{t}']:.2f}" for t in (85, 90, 95)),
                *(str(d[f"NoF@{t}"]) for t in (85, 90, 95)), *at, f"{d['s_per_click']:.3f}",
                str(d["samples"]), str(d["failed"])]) + " |")
    return "\n".join(lines)


def iter_objects(source: str | Path, *, limit: int | None = None, format: str | None = None,
                 source_options: dict[str, Any] | None = None, objects: str = "regions"
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """``(key, image (H, W, 3) uint8, gt (H, W) bool, ignore (H, W) bool)`` of each object of
    the first ``limit`` images of ``source``, as ``evaluate`` sees them; unusable inputs are
    skipped (``evaluate`` reports them). For validation during training."""
    jobs, _ = _jobs(source, dataset_name(source), format, dict(source_options or {}), limit)
    for job in jobs:
        try:
            key, _, image, regions, ignore = _load(job)
        except BadInput:
            continue
        parts = regions.any(0, keepdims=True) if objects == "union" and len(regions) else regions
        for gt in parts:
            yield key, image, gt, ignore
