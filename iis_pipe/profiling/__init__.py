"""Measurement code that is part of the toolkit: the click simulation against its plain
reference (``clicks``), JPEG decoders (``decode``), the training loader's stages (``loader``),
and the one-core setting every benchmark runs in (``cores``). Used by ``iis-pipe bench ...``,
``iis-pipe profile loader`` and ``benchmarks/``; the figures themselves live in the README.

Importing this package loads nothing heavy: ``pin_one_core`` must be able to run before numpy,
OpenCV or torch are loaded.
"""

from iis_pipe.profiling.cores import pin_one_core

__all__ = ["pin_one_core"]
