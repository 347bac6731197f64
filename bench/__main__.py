"""`python -m bench`: see bench/run.py; `python -m bench hostile-server`: see bench/hostile_server.py."""

import sys

if sys.argv[1:2] == ["hostile-server"]:
    from bench.hostile_server import main

    sys.exit(main(sys.argv[2:]))

from bench.run import main

sys.exit(main())
