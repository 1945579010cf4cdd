"""The `pressroom` command's entry point (console script and ``python -m pressroom``): a build
with nothing to do is answered by fastpath.py before the CLI loads; everything else by cli.py."""

import sys

from pressroom.fastpath import noop_report


def main() -> None:
    """Run ``pressroom`` with ``sys.argv``."""
    report = noop_report(sys.argv[1:])
    if report is not None:
        sys.stdout.write(report)
        return
    from pressroom.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
