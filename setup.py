"""Build hook for the optional C decoder (otpy/dist/_etf_c.c); the rest is in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and
otpy uses its pure-Python decoder (``otpy.dist._etf``), which gives the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("otpy.dist._etf_c", ["otpy/dist/_etf_c.c"], optional=True)])
