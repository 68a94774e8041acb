"""`python -m asgilook`: the way to run asgilook (serving/launcher.py, the README)."""

import sys

from .serving.launcher import main

sys.exit(main())
