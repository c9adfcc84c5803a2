"""The ``iis-pipe`` command: thin click wrappers over ``iis_pipe.pipelines``.

The folder is ``cli/`` at the top of the repository; it installs as ``iis_pipe.cli``
(setup.cfg's ``package_dir``).
"""
