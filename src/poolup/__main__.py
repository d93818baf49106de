import sys

from poolup.cli import main

sys.exit(main())
