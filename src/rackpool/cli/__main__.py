import sys

from rackpool.cli import main

sys.exit(main())
