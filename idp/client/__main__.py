"""``python -m idp.client credentials --profile NAME`` (the same as ``idp credentials``)."""

import sys

from idp.client.cli import main

sys.exit(main())
