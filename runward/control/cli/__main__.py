"""`python -m runward.control.cli`: how `runward up` starts its own children."""

import sys

from runward.control.cli import main

sys.exit(main())
