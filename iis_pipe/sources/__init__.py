"""Dataset readers ("sources"): each format lists its images cheaply and loads one at a time.

Every module ``iis_pipe/sources/<name>.py`` exposes three plain functions:

- ``detect(root) -> bool``: the folder has this format's layout;
- ``scan(root, *, split=..., **options) -> Iterator[SourceItem | BadInput]``: items in sorted,
  deterministic order without reading pixels; half pairs come back as ``BadInput``;
- ``load(item) -> Sample``: pixels and instances, raising ``BadInput`` for unusable inputs.

``read`` chains them and yields every problem as a ``BadInput`` so long jobs can count it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from iis_pipe.errors import BadInput
from iis_pipe.sources import berkeley, coco, davis, folder, grabcut, sa1b, sbd, toy, voc
from iis_pipe.sources._common import record_key
from iis_pipe.sources.types import Sample, SourceItem

__all__ = ["FORMATS", "SourceFormat", "Sample", "SourceItem", "check_options", "detect_format",
           "get_format", "read", "record_key"]


class SourceFormat(NamedTuple):
    """One registered format; ``layout`` describes what ``detect`` looks for, for error messages."""

    name: str
    detect: Callable[[Path], bool]
    scan: Callable[..., Iterator[SourceItem | BadInput]]
    load: Callable[[SourceItem], Sample]
    layout: str


FORMATS: dict[str, SourceFormat] = {
    m.NAME: SourceFormat(m.NAME, m.detect, m.scan, m.load, m.LAYOUT)
    for m in (grabcut, berkeley, davis, folder, coco, sa1b, sbd, voc, toy)
}


def get_format(name: str) -> SourceFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown source format {name!r}; known: {', '.join(FORMATS)}") from None


def detect_format(root: Path | str | None) -> str:
    """The one format whose layout ``root`` has (``None`` or ``"toy"``: the synthetic set)."""
    if root is not None and not toy.detect(root) and not Path(root).is_dir():
        raise ValueError(f"{root} is not a folder")
    found = [f.name for f in FORMATS.values() if f.detect(root)]
    if len(found) == 1:
        return found[0]
    looked_for = "; ".join(f"{f.name}: {f.layout}" for f in FORMATS.values())
    if not found:
        raise ValueError(f"cannot tell the format of {root}: no known layout found (looked for {looked_for})")
    raise ValueError(f"{root} matches several formats {found}; pass format= explicitly")


def read(root: Path | str | None, format: str | None = None, **options) -> Iterator[Sample | BadInput]:
    """Scan ``root`` (format detected unless given) and load each item; every unusable input,
    from scan or load, is yielded as a ``BadInput`` carrying its record key."""
    fmt = get_format(format) if format is not None else get_format(detect_format(root))
    check_options(fmt, options)
    return _read(fmt, root, options)


def check_options(fmt: SourceFormat, options: dict) -> None:
    """Raise a ``TypeError`` naming the format and its options when ``options`` has others
    (a bare ``scan(**options)`` would only say "unexpected keyword argument")."""
    known = [n for n, p in inspect.signature(fmt.scan).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"source format {fmt.name!r} has no option {unknown}; its options: {known}")


def _read(fmt: SourceFormat, root, options: dict) -> Iterator[Sample | BadInput]:
    for item in fmt.scan(root, **options):
        if isinstance(item, BadInput):
            yield item
            continue
        try:
            yield fmt.load(item)
        except BadInput as e:
            e.key = e.key or item.key
            yield e
