"""An SMTP sink in its own process for the scale tests and `make bench`: it answers each message
after --delay seconds (as a distant relay does), records every accepted recipient, and can start
failing like a dying relay.

    python scripts/smtp_sink.py --delay 0.02 --record received.txt [--fail-after 500]

It prints "PORT <n>" once it listens on 127.0.0.1 (port 0: the kernel picks). With
--fail-after N, after N accepted messages it hangs up on every MAIL FROM with a 421 (a relay
shutting down mid-run), so senders must fail over. --record appends one line per accepted
message, "<recipient>\\n", flushed before the 250 goes out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    """Accept everything after a delay; record it; optionally start failing."""

    def __init__(self, delay: float, record: str | None, fail_after: int | None) -> None:
        self.delay, self.fail_after = delay, fail_after
        self.record = open(record, "a", encoding="utf-8") if record else None  # noqa: SIM115
        self.accepted = 0

    @property
    def failing(self) -> bool:
        return self.fail_after is not None and self.accepted >= self.fail_after

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.failing:
            server.transport.close()
            return "421 4.3.2 Service shutting down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:  # dropped mid-session: the message was never accepted
            server.transport.close()
            return "421 4.3.2 Service shutting down"
        self.accepted += 1
        if self.record is not None:
            self.record.write("".join(f"{rcpt}\n" for rcpt in envelope.rcpt_tos))
            self.record.flush()
        return "250 2.0.0 OK queued"


async def serve(args: argparse.Namespace) -> None:
    handler = Handler(args.delay, args.record, args.fail_after)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.local", data_size_limit=None),
        host="127.0.0.1", port=args.port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--record")
    parser.add_argument("--fail-after", type=int)
    try:
        asyncio.run(serve(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
