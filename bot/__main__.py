"""`python -m bot` is the `scrubbot` command."""

import sys

from bot.cli import main

sys.exit(main())
