"""``python -m mpidrl``: the mpidrl command."""

import sys

from mpidrl.cli import main

sys.exit(main())
