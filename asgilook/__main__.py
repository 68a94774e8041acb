"""`python -m asgilook`: the way to run asgilook (see launcher.py and the README)."""

import sys

from .launcher import main

sys.exit(main())
