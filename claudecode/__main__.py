"""``python -m claudecode``: the ``claudecode`` command (see :mod:`claudecode._cli`)."""

import sys

from claudecode._cli import main

if __name__ == "__main__":
    sys.exit(main())
