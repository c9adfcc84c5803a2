"""Click files: the clicks a person (or a robot) gave on objects, to replay them in evaluation.

The app exports them and ``evaluate --clicks FILE`` replays them. A click is ``[y, x,
positive]`` as in ``samples.parquet`` (``positive`` 1/0 or true/false, pixel coordinates of
the full-size image, row ``y`` first). Accepted files:

- JSON ``{"version": 1, "objects": [OBJECT, ...]}`` (what the app writes), or a bare JSON list
  ``[OBJECT, ...]`` (by hand); ``OBJECT`` is ``{"key": "banana1", "clicks": [[y, x, 1], ...]}``
  with optional ``"object"`` (the region's index in the record, default 0), ``"dataset"`` (the
  source's name as ``evaluate`` reports it; needed only with several sources) and informative
  ``"file"`` and ``"size"`` (``[H, W]``);
- an evaluation run's ``samples.parquet`` (its robot's clicks, failed rows left out), so that
  another predictor can be scored on the same clicks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from iis_pipe.clicking.format import Click

CLICKS_VERSION = 1


@dataclass(frozen=True)
class ObjectClicks:
    """The clicks given on one object (``object``: region index within record ``key``)."""

    key: str
    object: int
    clicks: tuple[Click, ...]
    dataset: str | None = None
    file: str | None = None
    size: tuple[int, int] | None = None  # (H, W) of the image the clicks were given on


def click_rows(clicks: Sequence[Click]) -> list[list[int]]:
    """``[[y, x, positive], ...]`` with ``positive`` 1 or 0 (the ``samples.parquet`` form)."""
    return [[int(c.y), int(c.x), int(bool(c.positive))] for c in clicks]


def clicks_json(objects: Sequence[ObjectClicks]) -> dict[str, Any]:
    """The JSON document of ``objects`` (see the module docstring)."""
    out = []
    for o in objects:
        entry: dict[str, Any] = {"key": o.key, "object": o.object, "clicks": click_rows(o.clicks)}
        if o.dataset is not None:
            entry["dataset"] = o.dataset
        if o.file is not None:
            entry["file"] = o.file
        if o.size is not None:
            entry["size"] = list(o.size)
        out.append(entry)
    return {"version": CLICKS_VERSION, "objects": out}


def parse_clicks(doc: Any, name: str = "<clicks>") -> list[ObjectClicks]:
    """Objects of a parsed JSON document; ``ValueError`` naming ``name``, the entry and the
    reason for anything else."""
    if isinstance(doc, dict):
        if doc.get("version") != CLICKS_VERSION or not isinstance(doc.get("objects"), list):
            raise ValueError(f"{name}: expected {{\"version\": {CLICKS_VERSION}, \"objects\": "
                             "[...]}} or a list of objects")
        doc = doc["objects"]
    if not isinstance(doc, list):
        raise ValueError(f"{name}: expected a list of objects, got {type(doc).__name__}")
    return [_entry(e, f"{name}: object {i}") for i, e in enumerate(doc)]


def _entry(e: Any, where: str) -> ObjectClicks:
    if not isinstance(e, dict):
        raise ValueError(f"{where}: expected {{\"key\": ..., \"clicks\": [[y, x, positive], ...]}}")
    key, obj, dataset = e.get("key"), e.get("object", 0), e.get("dataset")
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: 'key' must be a non-empty string")
    if not _is_int(obj) or obj < 0:
        raise ValueError(f"{where}: 'object' must be an integer >= 0, got {obj!r}")
    if dataset is not None and not isinstance(dataset, str):
        raise ValueError(f"{where}: 'dataset' must be a string")
    rows = e.get("clicks")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{where} ({key}): 'clicks' must be a non-empty list of [y, x, positive]")
    clicks = []
    for j, c in enumerate(rows):
        if (not isinstance(c, list) or len(c) != 3 or not all(_is_int(v) for v in c[:2])
                or min(c[:2]) < 0 or c[2] not in (0, 1)):  # True/False equal 1/0
            raise ValueError(f"{where} ({key}): click {j} {c!r} is not [y, x, positive] with "
                             "y, x >= 0 integers and positive 1/0")
        clicks.append(Click(int(c[0]), int(c[1]), bool(c[2])))
    size = e.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(_is_int(v) and v > 0 for v in size)):
        raise ValueError(f"{where} ({key}): 'size' must be [H, W]")
    file = e.get("file")
    return ObjectClicks(key, int(obj), tuple(clicks), dataset,
                        None if file is None else str(file),
                        None if size is None else (int(size[0]), int(size[1])))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_clicks(path: str | Path) -> list[ObjectClicks]:
    """The objects of a click file (JSON, or a run's ``samples.parquet``); ``ValueError`` or
    ``FileNotFoundError`` naming the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"clicks file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path, columns=["dataset", "key", "object", "file",
                                                "clicks", "error"]).to_pylist()
        except Exception as e:  # pyarrow raises several types for a foreign file
            raise ValueError(f"{path}: not an evaluation samples.parquet ({e})") from None
        return parse_clicks([{"dataset": r["dataset"], "key": r["key"], "object": r["object"],
                              "file": r["file"], "clicks": json.loads(r["clicks"])}
                             for r in rows if r["error"] is None and r["clicks"]], str(path))
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON click file ({e})") from None
    return parse_clicks(doc, str(path))
