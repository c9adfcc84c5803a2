"""Stage compositions over the library: prepare, verify, inspect, preview, evaluate, train
(and the executors they share). The folder is ``pipelines/`` at the top of the repository; it
installs as ``iis_pipe.pipelines`` (setup.cfg's ``package_dir``).
"""
