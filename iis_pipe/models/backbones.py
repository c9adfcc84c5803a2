"""timm backbones, built offline: random init, or weights from a local file only."""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
import torch.nn as nn

_REMOTE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|hf[-_]hub:)")


def local_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing local file; URLs and hub ids are refused (``ValueError``), a
    missing file is a ``FileNotFoundError``, both naming ``what`` it was meant to be."""
    text = str(path)
    if _REMOTE.match(text):
        raise ValueError(f"{what} must be a local file path, got {text!r}: "
                         "hub ids and URLs are refused (models are built offline)")
    file = Path(text).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {file}")
    return file


class BackboneWeightsError(ValueError):
    """Backbone weights that do not fit the model: the keys missing and unexpected named."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local ``.safetensors`` file or a torch file (``.pth``/``.pt``/...;
    a checkpoint dict's ``state_dict`` or ``model`` entry is taken, DDP's ``module.`` prefix
    dropped), as timm's loader reads them."""
    file = local_file(path, "backbone weights")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # format errors vary by library version: name the file
        raise BackboneWeightsError(f"{file}: not readable backbone weights ({exc})") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneWeightsError(f"{file}: not a state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def check_backbone_weights(name: str, state: dict[str, torch.Tensor], file: str | Path,
                           in_chans: int = 3) -> None:
    """Refuse weights whose keys are not those of timm's ``name`` classifier (the form ImageNet
    checkpoints take, under timm's key names): BackboneWeightsError naming the missing keys,
    the unexpected ones and the shape mismatches (the stem's input channels when ``in_chans !=
    3`` and ViT position embeddings aside: timm adapts those). ``num_batches_tracked`` buffers
    may be absent."""
    ref = timm.create_model(name, pretrained=False).state_dict()
    missing = sorted(k for k in set(ref) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(ref))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(ref[k].shape)}"
                    for k in set(ref) & set(state) if state[k].shape != ref[k].shape
                    and "pos_embed" not in k  # timm resamples position embeddings
                    and not (in_chans != 3 and state[k].ndim == 4
                             and state[k].shape[0] == ref[k].shape[0]
                             and state[k].shape[2:] == ref[k].shape[2:]))
    if missing or unexpected or shapes:
        def some(keys):
            return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
        parts = [f"{len(missing)} missing keys: {some(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected keys: {some(unexpected)}" if unexpected else "",
                 f"{len(shapes)} shape mismatches: {some(shapes)}" if shapes else ""]
        raise BackboneWeightsError(f"{file}: not timm {name!r} weights; "
                                   + "; ".join(p for p in parts if p))


def create_backbone(name: str, weights: str | Path | None = None, **kwargs) -> nn.Module:
    """``timm.create_model(name, **kwargs)``, never touching the network.

    ``weights``: a local timm state dict of the full classifier (``.pth`` or ``.safetensors``,
    e.g. ImageNet weights copied by hand, timm's key names). Its keys are checked against the
    classifier's first (``check_backbone_weights``: timm itself would load a partial match
    silently for ``features_only``), then it goes through timm's own pretrained loader, which
    drops the classifier for ``features_only``/``num_classes=0`` and adapts the stem to
    ``in_chans != 3``.
    """
    if weights is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    file = local_file(weights, "backbone weights")
    check_backbone_weights(name, read_state_dict(file), file, kwargs.get("in_chans", 3))
    # source="file" overrides the model's default hf-hub source, so timm reads only this file
    overlay = {"source": "file", "file": str(file)}
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
