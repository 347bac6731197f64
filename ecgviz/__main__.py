"""``python -m ecgviz``."""

import sys

from ecgviz.cli.main import main

sys.exit(main())
