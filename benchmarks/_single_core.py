"""Pin the benchmark to one core with library threads set to 1, before numpy/cv2 load
(imported first by every benchmark; ``iis_pipe.profiling.cores`` does the work)."""

from iis_pipe.profiling.cores import pin_one_core

pin_one_core()
