"""``python -m app``: the same as the ``icehook`` command."""

from app.cli.main import main

main()
