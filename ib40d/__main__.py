# SPDX-License-Identifier: GPL-2.0-or-later
import sys

from ib40d.commands.cli import main

sys.exit(main())
