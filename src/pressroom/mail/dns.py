"""DNS lookups for the deliverability checks: one dnspython resolver, optionally pointed elsewhere.

``Lookup("127.0.0.1:5353")`` asks only that server (tests run a local authoritative server);
``Lookup()`` uses the machine's resolver configuration. A name that does not exist and a name
without records of the asked type both give an empty list; a server that does not answer is a
``DnsError`` naming the query, so a check can say "could not look up" instead of "missing".
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.resolver

from pressroom.errors import MailError

TIMEOUT = 5.0


class DnsError(MailError):
    """A lookup that got no usable answer (timeout, SERVFAIL, refused)."""


def parse_nameserver(value: str) -> tuple[str, int]:
    """``"10.0.0.53"``, ``"10.0.0.53:5353"`` or ``"[::1]:5353"`` -> (address, port)."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 53
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        if not number.isdigit():
            raise MailError(f"nameserver {value!r}: the port must be a number, e.g. 127.0.0.1:5353")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise MailError(f"nameserver {value!r} must be an IP address (optionally :PORT), "
                        "e.g. 127.0.0.1:5353") from None
    return host, port


class Lookup:
    """TXT, MX and address lookups through one resolver; answers are cached for one run."""

    def __init__(self, nameserver: str | None = None, timeout: float = TIMEOUT) -> None:
        if nameserver:
            host, port = parse_nameserver(nameserver)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        else:
            self.resolver = dns.resolver.Resolver()
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout
        self.queries = 0
        self._cache: dict[tuple[str, str], list] = {}
        self._silent: str | None = None  # after one timeout, fail fast instead of waiting again

    def _ask(self, name: str, rdtype: str) -> list:
        key = (name.lower().rstrip("."), rdtype)
        if key in self._cache:
            return self._cache[key]
        if self._silent:
            raise DnsError(f"could not look up {rdtype} {key[0]}: {self._silent}")
        self.queries += 1
        try:
            answer = list(self.resolver.resolve(key[0] + ".", rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            answer = []
        except dns.exception.Timeout as exc:
            self._silent = f"the nameserver did not answer within {self.resolver.lifetime:g} s"
            raise DnsError(f"could not look up {rdtype} {key[0]}: {self._silent}") from exc
        except dns.exception.DNSException as exc:
            raise DnsError(f"could not look up {rdtype} {key[0]}: {exc}") from exc
        self._cache[key] = answer
        return answer

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each one's strings joined (RFC 7208 3.3)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._ask(name, "TXT")]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange host) pairs, lowest preference first."""
        pairs = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower())
                 for r in self._ask(name, "MX")]
        return sorted(pairs)

    def addresses(self, name: str, families: tuple[str, ...] = ("A", "AAAA")) -> list[str]:
        """The A and AAAA addresses of ``name`` (an IP literal is its own address)."""
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        return [r.address for rdtype in families for r in self._ask(name, rdtype)]

    def dkim_txt(self, name: bytes, timeout: float = TIMEOUT) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record at ``name`` as bytes (None when absent)."""
        records = self.txt(name.decode("ascii"))
        return records[0].encode("utf-8") if records else None
