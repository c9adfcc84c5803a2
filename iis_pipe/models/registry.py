"""Named model configurations, ``create``, and checkpoints that carry their configuration.

A model's config is ``{"name", "arch", "kwargs"}``: the name it was created under, the class
(``"segmenter"`` or ``"representer"``) and the full constructor kwargs (registry defaults merged
with the caller's), so a checkpoint rebuilds without the registry defaults of the day.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from iis_pipe.errors import IISError

from .backbones import local_file
from .representer import IISRepresenter
from .segmenter import IISSegmenter

ARCHS: dict[str, type[nn.Module]] = {"segmenter": IISSegmenter, "representer": IISRepresenter}

# HRNet: the raw branch outputs (strides 4..32, 16..128 channels) as in RITM, not timm's default
# classification "incre" features (128..1024 channels, several times the head's cost)
_HRNET18S = {"backbone": "hrnet_w18_small", "out_indices": (1, 2, 3, 4),
             "backbone_kwargs": {"feature_location": ""}}

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "hrnet18s-conv1s": ("segmenter", {**_HRNET18S, "fusion": "conv1s"}),
    "hrnet18s-cat": ("segmenter", {**_HRNET18S, "fusion": "cat"}),
    "hrnet18s-none": ("segmenter", {**_HRNET18S, "fusion": "none"}),
    "vit-s-simpleclick": ("representer", {"backbone": "vit_small_patch16_224", "fusion": "patch"}),
    "vit-s-none": ("representer", {"backbone": "vit_small_patch16_224", "fusion": "none"}),
}
TIMM_PREFIX = "timm:"  # "timm:<any timm features_only model>" -> IISSegmenter on that backbone


class CheckpointError(IISError, ValueError):
    """A checkpoint that cannot be used: not one of ours, or not the model asked for."""


def available() -> list[str]:
    """Registered model names (``"timm:<name>"`` is accepted besides)."""
    return sorted(MODELS)


def resolve(name: str, **kwargs) -> dict[str, Any]:
    """The config of ``create(name, **kwargs)`` without building the model."""
    if name.startswith(TIMM_PREFIX):
        arch, defaults = "segmenter", {"backbone": name[len(TIMM_PREFIX):]}
    elif name in MODELS:
        arch, defaults = MODELS[name]
    else:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(available())}, "
                       f"or {TIMM_PREFIX}<timm model name>")
    return {"name": name, "arch": arch, "kwargs": copy.deepcopy({**defaults, **kwargs})}


def build(config: dict[str, Any]) -> nn.Module:
    """Model of a config (random init, or its ``backbone_weights``); ``model.config`` is set."""
    model = ARCHS[config["arch"]](**config["kwargs"])
    model.config = copy.deepcopy(config)
    return model


def create(name: str, checkpoint: str | Path | None = None, **kwargs) -> nn.Module:
    """Build model ``name`` (see ``available()``) with constructor ``kwargs`` overriding the
    registered ones.

    ``checkpoint``: a local file written by ``save``. Its config must equal the requested one
    (``backbone_weights`` aside: the checkpoint's weights replace them); a mismatch is a
    ``CheckpointError`` listing the differing kwargs, not a silent switch of model. Use ``load``
    to rebuild whatever a checkpoint holds.
    """
    if checkpoint is None:
        return build(resolve(name, **kwargs))
    kwargs.pop("backbone_weights", None)
    wanted = resolve(name, **kwargs)
    ckpt = _read(checkpoint)
    found = ckpt["config"]
    if (found["arch"], found["kwargs"]) != (wanted["arch"], wanted["kwargs"]):
        raise CheckpointError(f"{checkpoint}: holds {_describe(found)}, asked for "
                              f"{_describe(wanted)}; differences: {_diff(found, wanted)}")
    return _restore(wanted, ckpt, checkpoint)


def save(model: nn.Module, path: str | Path, **extra) -> Path:
    """Write ``{"config": model.config, "state_dict": ..., **extra}`` with ``torch.save`` (the
    config less ``backbone_weights``, which the state dict supersedes).

    ``extra`` (epoch, optimizer state, metrics...) must be plain containers, numbers, strings
    and tensors: ``load`` reads with ``weights_only=True``.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise CheckpointError(f"{type(model).__name__} has no config: build it with "
                              "iis_pipe.models.create so that the checkpoint can rebuild it")
    reserved = {"config", "state_dict"} & set(extra)
    if reserved:
        raise ValueError(f"extra keys {sorted(reserved)} are reserved")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": _stored_config(config), "state_dict": model.state_dict(), **extra}, path)
    return path


def load(path: str | Path) -> nn.Module:
    """Rebuild the model a ``save`` checkpoint holds, from its own config, weights loaded."""
    ckpt = _read(path)
    return _restore(ckpt["config"], ckpt, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The whole checkpoint dict (config, state_dict and the ``extra`` given to ``save``)."""
    return _read(path)


def _read(path: str | Path) -> dict[str, Any]:
    file = local_file(path, "checkpoint")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors vary by torch version; name the file instead
        raise CheckpointError(f"{file}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or not {"config", "state_dict"} <= set(ckpt):
        raise CheckpointError(f"{file}: not an iis_pipe.models checkpoint "
                              "(expected a dict with 'config' and 'state_dict')")
    if ckpt["config"].get("arch") not in ARCHS:
        raise CheckpointError(f"{file}: unknown arch {ckpt['config'].get('arch')!r}")
    return ckpt


def _restore(config: dict[str, Any], ckpt: dict[str, Any], path: str | Path) -> nn.Module:
    model = build(config)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
        detail = " ".join(str(exc).split())  # torch's multi-line message, on one log line
        raise CheckpointError(f"{path}: weights do not fit {_describe(config)}: {detail}") from exc
    return model


def _stored_config(config: dict[str, Any]) -> dict[str, Any]:
    """Config as stored: no ``backbone_weights`` (the state dict supersedes them, and the file
    need not exist where the checkpoint is loaded)."""
    out = copy.deepcopy(config)
    out["kwargs"].pop("backbone_weights", None)
    return out


def _describe(config: dict[str, Any]) -> str:
    return f"{config['name']!r} ({config['arch']})"


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(set(a["kwargs"]) | set(b["kwargs"]))
    parts = [f"{k}: checkpoint {a['kwargs'].get(k, '<default>')!r} vs asked "
             f"{b['kwargs'].get(k, '<default>')!r}" for k in keys
             if a["kwargs"].get(k, "<default>") != b["kwargs"].get(k, "<default>")]
    if a["arch"] != b["arch"]:
        parts.insert(0, f"arch: {a['arch']} vs {b['arch']}")
    return "; ".join(parts)
