"""``show``: a picture of one record: regions, ignore pixels and a region's distance map."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib import colormaps

from iis_pipe.errors import IncompleteDataset
from iis_pipe.records import schema
from iis_pipe.shards import index as idx
from iis_pipe.shards.tar import iter_shard
from iis_pipe.storage import Store, store


_DIVERGING = colormaps["RdBu"]


def find_record(root: str | Path | Store, key: str | None = None
                ) -> tuple[str, dict[str, bytes]]:
    """Members of record ``key`` (default: the first indexed record) of a dataset folder,
    local or a URL."""
    root = store(root)
    table = idx.read_index(root)
    if table.num_rows == 0:
        raise KeyError(f"{root.url}: the index holds no records")
    keys = table.column("key").to_pylist()
    shards = table.column("shard").to_pylist()
    if key is None:
        key = keys[0]
    if key not in keys:
        close = [k for k in dict.fromkeys(keys) if key.lower() in k.lower()][:5]
        raise KeyError(f"{root.url}: no record {key!r}" + (f"; similar: {close}" if close else ""))
    shard = shards[keys.index(key)]
    found = idx.shard_list(root)
    if shard in found.missing or shard not in found.shards:
        raise IncompleteDataset(root.url, [shard]) if shard in found.missing else KeyError(
            f"{root.url}: the index places {key!r} in {shard}, which the manifest does not list")
    for k, members in iter_shard(root.name(shard)):
        if k == key:
            return k, members
    raise KeyError(f"{root.name(shard)}: record {key!r} is indexed there but missing")


def _palette(n: int) -> np.ndarray:
    hues = (np.arange(n) * 47) % 180
    hsv = np.stack([hues, np.full(n, 200), np.full(n, 255)], 1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def render(rec: schema.Record, region: int = 0) -> np.ndarray:
    """``(H, 2W, 3) uint8`` RGB: left, image with regions (colour), ignore (grey hatch);
    right, region ``region``'s signed distance (inside warm, outside cool)."""
    img = rec.image.astype(np.float32)
    colours = _palette(len(rec.regions)).astype(np.float32)
    left = img.copy()
    for m, c in zip(rec.regions, colours):
        left[m] = 0.55 * left[m] + 0.45 * c
    h, w = rec.ignore.shape
    hatch = ((np.add.outer(np.arange(h), np.arange(w)) // 4) % 2 == 0) & rec.ignore
    left[hatch] = 128
    left = left.astype(np.uint8)
    for m, c in zip(rec.regions, colours):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(left, contours, -1, tuple(int(v) for v in c), 1)
    inside, outside = rec.inside_outside(region)
    clip = rec.coding.clip * rec.coding.step
    # sqrt spreads the small distances near the boundary, where samplers look
    signed = np.sign(inside - outside) * np.sqrt(np.abs(inside - outside) / clip)
    right = (_DIVERGING(0.5 - 0.5 * signed)[..., :3] * 255).astype(np.uint8)
    contours, _ = cv2.findContours(rec.regions[region].astype(np.uint8), cv2.RETR_LIST,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(right, contours, -1, (255, 255, 255), 1)
    for panel, text in ((left, f"{rec.key}: {len(rec.regions)} regions, ignore hatched"),
                        (right, f"region {region}: inside red, outside blue, clip {clip:g}px")):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(panel, (0, 0), (tw + 8, th + 10), (0, 0, 0), -1)
        cv2.putText(panel, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return np.concatenate([left, right], axis=1)


def show(root: str | Path, out: str | Path, key: str | None = None, region: int = 0) -> Path:
    """Write the preview PNG of one record; returns its path."""
    k, members = find_record(root, key)
    rec = schema.decode_record(members)
    if not 0 <= region < len(rec.regions):
        raise IndexError(f"record {k!r} has regions 0..{len(rec.regions) - 1}, not {region}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(render(rec, region), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{out}: could not write the preview (is the suffix .png?)")
    return out
