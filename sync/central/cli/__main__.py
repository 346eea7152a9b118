"""`python -m sync.central.cli`: the same as `kiosk-central`."""

import sys

from sync.central.cli import main

sys.exit(main())
