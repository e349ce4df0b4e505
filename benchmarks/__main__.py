"""``python -m benchmarks [--quick] [--quality]``: see benchmarks/run.py."""

import sys

from benchmarks.run import main

sys.exit(main())
