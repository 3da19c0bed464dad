import sys

from edges.gateway.cli import main

sys.exit(main())
