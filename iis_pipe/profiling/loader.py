"""Where the training loader's time goes: samples/s and time per stage (``iis-pipe profile
loader``, ``benchmarks/bench_loader.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm import tqdm

from iis_pipe.stream.loader import StreamConfig, StreamLoader


@dataclass
class LoaderResult:
    workers: int
    samples: int
    seconds: float
    stages: dict[str, float]  # seconds per sample, measured in-process (workers == 0)
    errors: int = 0           # records and shard rests skipped
    retries: int = 0          # remote connections reopened (iis_pipe.remote)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds


def profile_loader(cfg: StreamConfig, workers: int, batches: int, progress: bool = True
                   ) -> LoaderResult:
    """Samples/s of ``batches`` batches after one warm-up batch per worker; ``workers == 0``
    runs in this process and also times each stage (read, region (choice of the target), fit
    (the crop placed on the label runs), decode (the image's window), resize (and flip, into the
    crop), photometric, masks (ignore, other objects, the target), distances (the stored maps
    under the click sampler's window), clicks, encode, collate)."""
    loader = StreamLoader(cfg, num_workers=workers)
    if workers == 0:
        loader.dataset.times = {}
    it = iter(loader)
    for _ in range(max(workers, 1)):
        next(it)
    if workers == 0:
        loader.dataset.times.clear()
    n = 0
    t0 = time.perf_counter()
    for _ in tqdm(range(batches), disable=not progress, desc=f"loader, {workers} workers",
                  unit="batch"):
        try:
            n += len(next(it)["keys"])
        except StopIteration:
            break
    seconds = time.perf_counter() - t0
    stages = {k: v / max(n, 1) for k, v in (loader.dataset.times or {}).items()}
    return LoaderResult(workers, n, seconds, stages, len(loader.errors), len(loader.retries))
