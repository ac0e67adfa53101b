import sys

from warehouse.command import main

sys.exit(main())
