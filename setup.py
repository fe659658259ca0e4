# SPDX-License-Identifier: GPL-2.0-or-later
# Shim for pybuild's setuptools plugin; all metadata lives in setup.cfg.
from setuptools import setup

setup()
