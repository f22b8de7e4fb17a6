"""Build script for the optional compiled codec; the metadata is in pyproject.toml.

``capnweb/_speedups.c`` is optional: without a C compiler the build goes on and capnweb runs
in pure Python. ``python setup.py build_ext --inplace`` (run by examples/setup.sh) puts it
beside the sources.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "capnweb/_speedups.c"
DIGEST = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()

setup(
    ext_modules=[
        Extension(
            "capnweb._speedups",
            [SOURCE],
            define_macros=[("CAPNWEB_SOURCE_HASH", f'"{DIGEST}"')],
            optional=True,
        )
    ]
)
