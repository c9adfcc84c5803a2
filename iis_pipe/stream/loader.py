"""The training stream: record shards -> deterministic, resumable batches of tensors.

Every reader (rank x DataLoader worker) scans the epoch's whole sequence of record references
(headers only, see ``iis_pipe.stream.reader``) and decodes its share by position: position
``p`` belongs to rank ``p % world``; rank-local index ``i = p // world`` belongs to batch
``i // batch_size``; batch ``k`` is made by worker ``(k - start) % workers``. The DataLoader
asks workers round-robin, so batches come out in order ``start, start + 1, ...`` whatever the
timing, each sample's randomness is seeded by its position, and resuming at batch ``k`` is
arithmetic.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from iis_pipe.clicking.samplers import SamplerConfig
from iis_pipe.errors import BadInput, EmptyEpoch, IISError
from iis_pipe.remote import RetryPolicy
from iis_pipe.shards.index import MANIFEST_FILE, read_json
from iis_pipe.stream.augment import AugmentConfig
from iis_pipe.stream.collate import batch_buffers, collate, slots
from iis_pipe.stream.order import Counted, epoch_sequence, sample_generators
from iis_pipe.stream.reader import OpenFiles, RecordRef, read_members, scan
from iis_pipe.stream.sample import (PARTLY_READ, ExpandBeyondRecords, MapsConfig, SampleConfig,
                                    TargetConfig, Timer, check_expand, make_sample)
from iis_pipe.stream.urls import expand_urls


@dataclass(frozen=True)
class StreamConfig:
    """Everything that decides the batches (see ``stream_config`` for flat keywords)."""

    shards: Any = None               # spec: folder, glob, brace list, URL or a list of them
    batch_size: int = 8
    seed: int = 0
    resampled: bool = False          # False: finite epochs, each record once per epoch
    samples_per_epoch: int = 0       # resampled: samples per epoch over all ranks
    shuffle_shards: bool = True
    shuffle_buffer: int = 1000
    drop_last: bool = False
    even_ranks: bool = False         # finite: every rank gets floor(N / world) samples (DDP)
    strict: bool = False             # raise on a corrupt shard or sample instead of counting it
    # remote shards: reopenings in a row without progress, first backoff (s), stall timeout (s)
    read_retries: int = 5
    read_backoff: float = 0.5
    read_stall: float = 30.0
    image_dtype: str = "float32"     # or "uint8" (convert on the device)
    target_dtype: str = "float32"    # or "int8" (1, 0, -1: convert on the device)
    rank: int | None = None          # default: torch.distributed, else RANK / WORLD_SIZE, else 0
    world_size: int | None = None
    sample: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.resampled and self.samples_per_epoch < 1:
            raise ValueError("resampled streams need samples_per_epoch >= 1")
        if self.image_dtype not in ("float32", "uint8"):
            raise ValueError(f"image_dtype must be float32 or uint8, not {self.image_dtype!r}")
        if self.target_dtype not in ("float32", "int8"):
            raise ValueError(f"target_dtype must be float32 or int8, not {self.target_dtype!r}")
        self.read_policy  # checks the remote read settings

    @property
    def read_policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.read_retries, backoff=self.read_backoff,
                           stall=self.read_stall)


_NESTED = {"augment": AugmentConfig, "target": TargetConfig, "sampler": SamplerConfig,
           "maps": MapsConfig}


def stream_config(shards, **knobs) -> StreamConfig:
    """``StreamConfig`` from flat keywords: any field of ``StreamConfig``, ``SampleConfig``,
    ``AugmentConfig``, ``TargetConfig``, ``SamplerConfig`` or ``MapsConfig`` (maps fields are
    ``maps_mode``, ``maps_radius``, ``maps_norm_radius``). Unknown names raise TypeError."""
    parts: dict[str, dict[str, Any]] = {name: {} for name in _NESTED}
    top: dict[str, Any] = {}
    sample_top: dict[str, Any] = {}
    fields = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in _NESTED.items()}
    stream_fields = {f.name for f in dataclasses.fields(StreamConfig)} - {"shards", "sample"}
    for key, value in knobs.items():
        if key in stream_fields:
            top[key] = value
        elif key in ("reduced_decode", "fast_decode"):
            sample_top[key] = value
        elif key.startswith("maps_") and key[5:] in fields["maps"]:
            parts["maps"][key[5:]] = value
        else:
            owner = [name for name in ("augment", "target", "sampler") if key in fields[name]]
            if not owner:
                raise TypeError(f"unknown stream keyword {key!r}")
            parts[owner[0]][key] = value
    sample = SampleConfig(**{name: cls(**parts[name]) for name, cls in _NESTED.items()},
                          **sample_top)
    return StreamConfig(shards=shards, sample=sample, **top)


def _rank_world(cfg: StreamConfig) -> tuple[int, int]:
    if cfg.rank is not None:
        return cfg.rank, cfg.world_size or 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    import os

    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _check_manifests(urls: list[str], sampler: SamplerConfig) -> None:
    """Refuse, at the start, a border band wider than local shards' manifests say their
    distance maps serve (remote shards, and shards without a manifest: their first record
    refuses it)."""
    seen = set()
    for url in urls:
        folder = Path(url).parent if "://" not in url and not url.startswith("pipe:") else None
        if folder is None or folder in seen:
            continue
        seen.add(folder)
        manifest = folder / MANIFEST_FILE
        if manifest.is_file():
            run = read_json(manifest)
            expand = run.get("params", {}).get("dt_expand")
            if run.get("schema", 0) >= 5 and expand is not None:
                check_expand({"dt": {"expand": expand}}, sampler, str(manifest))


class ShardStream(IterableDataset):
    """Batches (not samples) of one epoch from ``start_batch`` on; use with
    ``DataLoader(batch_size=None)`` or through ``StreamLoader``."""

    def __init__(self, cfg: StreamConfig):
        self.cfg = cfg
        self.urls = expand_urls(cfg.shards)
        _check_manifests(self.urls, cfg.sample.sampler)
        # Resolved here, in the main process (create the stream after init_process_group):
        # forked DataLoader workers need not see the process group.
        self.rank, self.world = _rank_world(cfg)
        self.epoch = 0
        self.start_batch = 0
        self.times: dict[str, float] | None = None  # set to {} to profile stages

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        if info is None:
            return self.batches(self.rank, self.world, 0, 1)
        return _carry_errors(self.batches(self.rank, self.world, info.id, info.num_workers))

    def _limit(self, world: int) -> int | None:
        """Rank-local sample count, when the epoch is cut short."""
        cfg = self.cfg
        if cfg.resampled:
            return None
        if cfg.even_ranks:
            total = sum(1 for _ in scan(self.urls, lambda e: None))
            return total // world
        return None

    def batches(self, rank: int, world: int, worker: int, workers: int
                ) -> Iterator[dict[str, Any]]:
        """This reader's batches: the epoch's records with their positions, this rank's share,
        this worker's batches, each decoded into one batch (the stages below)."""
        cfg = self.cfg
        scan_errors: list[tuple[str, str, str]] = []
        faults: list[tuple[str, str, str]] = []
        retries: list[tuple[str, int, str]] = []

        def on_error(e: BadInput) -> None:
            if cfg.strict:
                raise e
            warnings.warn(f"skipping the rest of shard {e.file}: {e.reason}", stacklevel=2)
            faults.append((e.file, e.key or "", e.reason))
            if rank == 0 and worker == 0:
                scan_errors.append(faults[-1])

        def on_retry(url: str, offset: int, reason: str) -> None:
            # every reader reads every shard: each reader's reopenings are its own
            retries.append((url, offset, reason))

        seq = Counted(epoch_sequence(self.urls, cfg.seed, self.epoch,
                                     shuffle_shards=cfg.shuffle_shards, buffer=cfg.shuffle_buffer,
                                     resampled=cfg.resampled, on_error=on_error,
                                     policy=cfg.read_policy, on_retry=on_retry))
        mine = worker_share(rank_share(positions(seq, cfg), rank, world, self._limit(world)),
                            cfg.batch_size, self.start_batch, worker, workers)
        generator = sample_generators(cfg.seed, self.epoch)
        files = OpenFiles()
        try:
            for k, group in batch_groups(mine, cfg.batch_size, cfg.drop_last):
                samples, errors, buffers = self._decode(group, generator, files)
                yield self._batch(k, samples, errors + _take(scan_errors), buffers,
                                  _take(retries))
        finally:
            files.close()
        if not seq.count:  # every reader scans the whole epoch: each knows it holds no record
            raise EmptyEpoch(self.urls, empty_reason(faults))

    def _decode(self, group: list[tuple[int, RecordRef]], generator, files: OpenFiles):
        """The samples of one batch's ``(position, ref)`` pairs, written into the batch's
        tensors, and the records that failed (counted, not fatal, unless strict)."""
        cfg = self.cfg
        buffers = batch_buffers(cfg.batch_size, cfg.sample.augment.crop_size, cfg.image_dtype,
                                cfg.target_dtype)
        outs = slots(buffers)
        samples: list[dict[str, Any]] = []
        errors: list[tuple[str, str, str]] = []
        for p, ref in group:
            rng = generator(p)
            try:
                t = Timer(self.times)
                members = read_members(ref, files, PARTLY_READ)
                t.lap("read")
                samples.append(make_sample(members, cfg.sample, rng, self.times,
                                           out=outs[len(samples)] if outs else None))
            except ExpandBeyondRecords as e:  # a setting to change: no record is good
                raise ExpandBeyondRecords(f"{ref.url}, {e}") from None
            except Exception as e:  # a bad record is counted, not fatal (unless strict)
                if cfg.strict:
                    raise BadInput(ref.url, f"record {ref.key!r}: {e}", ref.key) from e
                warnings.warn(f"skipping record {ref.key!r} of {ref.url}: {e}", stacklevel=2)
                errors.append((ref.url, ref.key, f"{type(e).__name__}: {e}"))
        return samples, errors, buffers

    def _batch(self, k: int, samples, errors, buffers, retries=()) -> dict[str, Any]:
        """``errors``: ``(shard, key, reason)`` of what was skipped since the last batch;
        ``retries``: ``(url, byte, reason)`` of the remote reopenings since then."""
        t = Timer(self.times)
        batch = (collate(samples, self.cfg.image_dtype, self.cfg.target_dtype, buffers)
                 if samples else {"keys": []})
        t.lap("collate")
        batch.update(epoch=self.epoch, batch=k, errors=errors, retries=list(retries))
        return batch


# The reader's stages, each a generator over the one before (webdataset's style).

def positions(refs: Iterable[RecordRef], cfg: StreamConfig) -> Iterator[tuple[int, RecordRef]]:
    """``(p, ref)``: the epoch's records with their positions; a resampled epoch ends at
    ``samples_per_epoch``."""
    for p, ref in enumerate(refs):
        if cfg.resampled and p >= cfg.samples_per_epoch:
            return
        yield p, ref


def rank_share(items: Iterable[tuple[int, RecordRef]], rank: int, world: int,
               limit: int | None) -> Iterator[tuple[int, int, RecordRef]]:
    """``(p, i, ref)`` of this rank: positions with ``p % world == rank``, ``i = p // world``
    its rank-local index; the share ends at ``i == limit`` (when not None)."""
    for p, ref in items:
        if p % world != rank:
            continue
        i = p // world
        if limit is not None and i >= limit:
            return
        yield p, i, ref


def worker_share(items: Iterable[tuple[int, int, RecordRef]], batch_size: int, start_batch: int,
                 worker: int, workers: int) -> Iterator[tuple[int, int, int, RecordRef]]:
    """``(k, p, i, ref)`` of this worker: batch ``k = i // batch_size`` from ``start_batch`` on
    belongs to worker ``(k - start_batch) % workers``."""
    for p, i, ref in items:
        k = i // batch_size
        if k < start_batch or (k - start_batch) % workers != worker:
            continue
        yield k, p, i, ref


def batch_groups(items: Iterable[tuple[int, int, int, RecordRef]], batch_size: int,
                 drop_last: bool) -> Iterator[tuple[int, list[tuple[int, RecordRef]]]]:
    """``(k, [(p, ref), ...])`` per batch, as soon as its last index arrives (no look-ahead, so
    the scan, and the shard errors it reports, keep step with the batches); the epoch's short
    last batch too unless ``drop_last``."""
    group: list[tuple[int, RecordRef]] = []
    k = None
    for k, p, i, ref in items:
        group.append((p, ref))
        if i % batch_size == batch_size - 1:
            yield k, group
            group = []
    if group and not drop_last:
        yield k, group


def nonempty_epoch(batches: Iterable[dict[str, Any]], urls: list[str], whole: bool
                   ) -> Iterator[dict[str, Any]]:
    """The epoch's batches; raises ``EmptyEpoch`` naming the shards at the end of a ``whole``
    epoch (not one resumed part-way) that produced no sample because every record failed (the
    readers raise it themselves for an epoch without records: see ``ShardStream.batches``).
    Without it a training loop asks for the next epoch forever."""
    samples = 0
    errors: list[tuple[str, str, str]] = []
    for b in batches:
        samples += len(b["keys"])
        if not samples:
            errors.extend(b["errors"])
        yield b
    if whole and not samples:
        raise EmptyEpoch(urls, empty_reason(errors))


def empty_reason(faults: list[tuple[str, str, str]]) -> str:
    """Why an epoch is empty, from its ``(file, key, reason)`` faults."""
    if not faults:
        return "the shards hold no record"
    file, key, reason = faults[0]
    return f"{len(faults)} faults, the first: {file}{f' record {key!r}' if key else ''}: {reason}"


def _carry_errors(batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """In a DataLoader worker: a project error ends the worker's batches as an item that
    carries the error itself (``{"raise": error}``), which ``StreamLoader`` raises. The
    DataLoader's own path would re-create it from its traceback text as a RuntimeError."""
    try:
        yield from batches
    except IISError as e:
        yield {"raise": e}


def _take(items: list) -> list:
    out = items[:]
    items.clear()
    return out


def _raise_carried(batches: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for b in batches:
        if "raise" in b:
            raise b["raise"]
        yield b


class StreamLoader:
    """Iterates ``ShardStream`` batches through a DataLoader and remembers where it is:
    ``state_dict()`` after any batch, ``load_state_dict()`` in a new run, and iteration goes on
    with exactly the batches the first run would have produced next."""

    def __init__(self, cfg: StreamConfig, num_workers: int = 0, **loader_kwargs):
        self.dataset = ShardStream(cfg)
        self.num_workers = num_workers
        self.loader_kwargs = loader_kwargs
        self.epoch = 0
        self.batch = 0
        self.errors: list[tuple[str, str, str]] = []
        self.retries: list[tuple[str, int, str]] = []  # (url, byte, reason) of remote reopenings
        self.samples = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.dataset.set_epoch(self.epoch, self.batch)
        kwargs = dict(batch_size=None, num_workers=self.num_workers, **self.loader_kwargs)
        if self.num_workers > 0:
            kwargs.setdefault("prefetch_factor", 2)
        loaded = _raise_carried(DataLoader(self.dataset, **kwargs))
        for b in nonempty_epoch(loaded, self.dataset.urls, whole=self.batch == 0):
            if b["batch"] != self.batch:  # the order guarantee is the point of this class
                raise RuntimeError(f"batch {b['batch']} arrived where {self.batch} was due")
            self.batch += 1
            self.samples += len(b["keys"])
            self.errors.extend(b["errors"])
            self.retries.extend(b["retries"])
            yield b
        self.epoch += 1
        self.batch = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.dataset.cfg.seed,
                "samples": self.samples, "errors": len(self.errors),
                "retries": len(self.retries)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["seed"] != self.dataset.cfg.seed:
            raise ValueError(f"state was saved with seed {state['seed']}, this stream has "
                             f"{self.dataset.cfg.seed}")
        self.epoch, self.batch, self.samples = state["epoch"], state["batch"], state["samples"]
