"""`python -m gateway.cli` runs the `stationgw` command."""

import sys

from gateway.cli.main import main

sys.exit(main())
