"""Run the mail commands alone: ``python -m pressroom.mail send 01-welcome``."""

import click

from pressroom.mail import commands


@click.group()
def main() -> None:
    """Pressroom's subscriber, send and bounce commands."""


for command in commands:
    main.add_command(command)

if __name__ == "__main__":
    main()
