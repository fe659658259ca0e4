# SPDX-License-Identifier: GPL-2.0-or-later
import sys

from ib40d.cli import main

sys.exit(main())
