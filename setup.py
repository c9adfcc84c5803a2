"""Only the optional C extension lives here; everything else is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[
    # libjpeg-turbo's partial decoding; optional: without jpeglib.h the loader decodes whole images
    Extension("iis_pipe._jpegwindow", ["iis_pipe/_jpegwindow.c"], libraries=["jpeg"],
              optional=True),
])
