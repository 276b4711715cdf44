import sys

from devstack.restore_drill.run import main

sys.exit(main())
