"""`python -m examples.screen_pop [--for SECONDS]`: the screen pop end to end (see demo.py)."""

import sys

from examples.screen_pop.demo import main

sys.exit(main())
