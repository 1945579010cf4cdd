"""Allow ``python -m pressroom``."""

from pressroom.fastpath import main

main()
