"""Image geometry shared by ``clicking``, ``records`` and ``stream``; imports no other package
of iis_pipe, so each of them can use it without importing another.

- ``box``: ``Box``, the one in-memory rectangle, and ``mask_bbox``.
- ``distance``: exact Euclidean distance transforms (numba), whole or pruned to a maximum.
"""
