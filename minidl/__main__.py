"""``python -m minidl ...`` runs the minidl command (see minidl.cli)."""
import sys

from .cli import main

sys.exit(main())
