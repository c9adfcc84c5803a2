"""Predictors for evaluation: one signature for classical methods and trained models.

A predictor is ``predictor(image, clicks, prev) -> probs`` with ``image (H, W, 3) uint8`` RGB,
``clicks`` the session's clicks so far (``iis_pipe.clicking.Click``, in click order), ``prev``
``(H, W) float32`` the previous output (zeros before the first click) and ``probs`` ``(H, W)
float32`` in [0, 1]; the evaluation thresholds ``probs`` to get the mask.

    predictor = make_predictor("grabcut")                  # no weights needed
    predictor = make_predictor("runs/ckpt.pt", max_size=480)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from iis_pipe.clicking import Click
from iis_pipe.predictors.classical import GrabCut
from iis_pipe.predictors.options import check_options

Predictor = Callable[[np.ndarray, Sequence[Click], np.ndarray], np.ndarray]

CLASSICAL = {"grabcut": GrabCut}  # names that need no file

__all__ = ["CLASSICAL", "GrabCut", "Predictor", "make_predictor"]


def make_predictor(spec: str, **options) -> Predictor:
    """The predictor named by ``spec``: a name in ``CLASSICAL`` or a checkpoint file written by
    ``iis_pipe.models.save``; ``options`` go to its constructor (``GrabCut`` fields, or
    ``ModelPredictor`` keywords).

    Options are checked against the predictor's declared ``OPTIONS`` (type and range) first:
    ``iis_pipe.errors.OptionError`` (a ValueError) names a bad one. Raises ``ValueError`` for an
    unknown name and ``FileNotFoundError`` for a missing checkpoint;
    ``iis_pipe.models.CheckpointError`` (a ValueError) for an unusable one.
    """
    if spec in CLASSICAL:
        cls = CLASSICAL[spec]
        return cls(**check_options(f"predictor {spec!r}", cls.OPTIONS, options))
    path = Path(spec)
    if not path.is_file():
        if path.suffix in (".pt", ".pth") or path.parent != Path("."):
            raise FileNotFoundError(f"checkpoint not found: {spec}")
        raise ValueError(f"unknown predictor {spec!r}: give one of {', '.join(CLASSICAL)}, "
                         "or a checkpoint file (.pt)")
    from iis_pipe.predictors.model import ModelPredictor  # torch only when a model is asked for

    options = check_options(f"predictor {spec!r}", ModelPredictor.OPTIONS, options)
    return ModelPredictor.from_checkpoint(path, **options)
