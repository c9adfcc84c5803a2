"""Option parsing shared by the commands: ``KEY=VALUE`` pairs, stream knobs, byte sizes."""

from __future__ import annotations

import json
import re

import click

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
          "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


class ByteSize(click.ParamType):
    """``256MB``, ``1.5GiB``, ``500k`` or plain bytes."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = _SIZE.match(str(value))
        unit = (m.group(2) or "").lower().rstrip("b") if m else None
        if not m or unit not in _UNITS or float(m.group(1)) <= 0:
            self.fail(f"{value!r} is not a size such as 256MB, 1GiB or 500k", param, ctx)
        return int(float(m.group(1)) * _UNITS[unit])


class DatasetRoot(click.ParamType):
    """A prepared dataset's folder: an existing local folder, or a URL (``s3://bucket/prefix``,
    any fsspec URL) that the command opens itself. Returns the text as given."""

    name = "folder|url"

    def convert(self, value, param, ctx):
        from iis_pipe.storage import is_url, local_path

        text = str(value)
        if is_url(text):
            return text
        if not local_path(text).is_dir():
            self.fail(f"folder {text!r} does not exist", param, ctx)
        return str(local_path(text))


def parse_options(pairs: tuple[str, ...], *, collect_repeats: bool = False) -> dict[str, object]:
    """``("split=val", "count=12")`` -> ``{"split": "val", "count": 12}``: values are JSON
    when they parse as JSON, else strings. A key given again replaces its value, or with
    ``collect_repeats`` collects the values in a list (``-O annotations=lvis.json -O
    annotations=coco.json``)."""
    out: dict[str, object] = {}
    repeated: set[str] = set()
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        if collect_repeats and key in out:
            if key not in repeated:
                out[key] = [out[key]]
                repeated.add(key)
            out[key].append(_literal(value.strip()))
        else:
            out[key] = _literal(value.strip())
    return out


def parse_knobs(pairs: tuple[str, ...]) -> dict[str, object]:
    """Stream keywords from ``NAME=VALUE`` pairs, JSON lists as tuples (``crop_size=[256,256]``
    -> ``(256, 256)``, the configs' frozen form)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in parse_options(pairs).items()}


def _literal(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
