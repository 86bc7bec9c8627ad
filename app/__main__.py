"""``python -m app``: the same as the ``icehook`` command."""

from app.cli import main

main()
