# SPDX-License-Identifier: MIT
"""Build and install the logbook Python package (cffi, API mode).

liblogbook is found with ``pkg-config logbook``; see docs/PYTHON.md.
Built with Debian's python3-setuptools and python3-cffi:

    pip install --no-build-isolation ./python   # against an installed logbook
    make python                                 # in place, against the tree
"""

import re
from pathlib import Path

from setuptools import setup

here = Path(__file__).resolve().parent
version = re.search(r'__version__ = "([^"]+)"',
                    (here / "logbook" / "__init__.py").read_text()).group(1)

setup(
    name="logbook",
    version=version,
    description="Python binding of logbook, an embeddable storage engine "
                "with a validated, reversible, verifiable batch log",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=["logbook"],
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    install_requires=["cffi>=1.15", "msgpack>=1.0"],
    cffi_modules=["logbook/_build.py:ffibuilder"],
    zip_safe=False,
)
