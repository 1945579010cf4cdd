"""Allow ``python -m pressroom``."""

from pressroom.cli import main

main()
