"""python -m services.report"""

import sys

from services.report.main import main

sys.exit(main())
