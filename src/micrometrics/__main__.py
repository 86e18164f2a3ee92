import sys

from micrometrics.cli import main

sys.exit(main())
