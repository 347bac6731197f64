"""``python -m ecgviz``."""

import sys

from ecgviz.cli import main

sys.exit(main())
