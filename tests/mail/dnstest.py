"""A real authoritative DNS server (dnslib) on 127.0.0.1 whose zone a test can swap."""

from __future__ import annotations

import threading

from dnslib import RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class SwappableZone(BaseResolver):
    """Answers from the zone text last loaded: exact names, NXDOMAIN for the rest."""

    def __init__(self) -> None:
        self.records: list[RR] = []
        self.queries: list[str] = []
        self.servfail: set[str] = set()  # names answered with SERVFAIL (a broken server)
        self.lock = threading.Lock()

    def load(self, zone: str, servfail: tuple[str, ...] = ()) -> None:
        with self.lock:
            self.records = list(RR.fromZone(zone))
            self.queries.clear()
            self.servfail = set(servfail)

    def resolve(self, request, handler):
        reply = request.reply()
        qname, qtype = request.q.qname, request.q.qtype
        with self.lock:
            self.queries.append(f"{qname} {qtype}")
            named = [rr for rr in self.records if rr.rname == qname]
            if str(qname) in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
        for rr in named:
            if rr.rtype == qtype:
                reply.add_answer(rr)
        if not named:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LocalDns:
    """UDP DNS on 127.0.0.1 at an ephemeral port; ``nameserver`` is "127.0.0.1:PORT"."""

    def __init__(self) -> None:
        self.zone = SwappableZone()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        self.server = DNSServer(self.zone, address="127.0.0.1", port=0, logger=quiet)
        self.server.start_thread()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.server.server.server_address[1]}"

    def close(self) -> None:
        self.server.stop()
        self.server.server.server_close()


def txt(text: str) -> str:
    """A zone-file TXT value: quoted strings of at most 255 characters (RFC 1035)."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))
