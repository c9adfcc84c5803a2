"""The ``iis-pipe`` command: thin click wrappers over ``pipelines/``."""
