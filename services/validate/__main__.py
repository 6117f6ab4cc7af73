"""python -m services.validate"""

import sys

from services.validate.main import main

sys.exit(main())
