"""python -m services.publish"""

import sys

from services.publish.main import main

sys.exit(main())
