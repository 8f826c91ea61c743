"""Build hook for the optional C decoder (otpy/_etf_c.c); everything else is in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and
otpy uses its pure-Python decoder (``otpy._etf``), which gives the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("otpy._etf_c", ["otpy/_etf_c.c"], optional=True)])
