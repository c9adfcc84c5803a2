"""Clicks: evaluation robots, training samplers, click encoders (distance transforms and boxes
are ``iis_pipe.geometry``'s).

- ``robots``: the next evaluation click from ground truth, prediction and past clicks.
- ``samplers``: the first clicks of a training sample (RITM's multi-point sampler).
- ``encode``: clicks to disk / distance / Gaussian maps (numba for workers, torch for batches).
- ``format``: ``Click`` and the ``(2N, 3)`` / ``(B, 2N, 3) int32`` click arrays.
- ``reference``: plain numpy/OpenCV statements of the rules (tests and benchmarks).
"""

from iis_pipe.clicking.encode import encode_clicks, encode_clicks_torch
from iis_pipe.clicking.format import Click, array_to_clicks, clicks_to_array, stack_clicks
from iis_pipe.clicking.robots import ROBOTS, standard
from iis_pipe.clicking.samplers import SamplerConfig, sample_clicks

__all__ = [
    "Click", "ROBOTS", "SamplerConfig", "array_to_clicks", "clicks_to_array",
    "encode_clicks", "encode_clicks_torch", "sample_clicks", "stack_clicks", "standard",
]
