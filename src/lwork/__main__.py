import sys

from lwork.cli import main

sys.exit(main())
