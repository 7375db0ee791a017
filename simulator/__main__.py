"""`python -m simulator …`: the same command line as `python simulate.py …`."""

import sys

from simulator.cli import main

sys.exit(main())
