"""SPF (RFC 7208) for the doctor: find the one record, count its DNS lookups, evaluate an address.

Only what a sender needs to know before mailing: whether receivers will find exactly one
record, whether evaluating it stays within the 10 DNS-querying terms of RFC 7208 4.6.4
(``include``, ``a``, ``mx``, ``ptr``, ``exists`` and ``redirect``, counted through includes and
redirects), and whether the relay's addresses get ``pass``. Macros (``%{i}``...) are not
expanded: a term using one is reported as not evaluated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from pressroom.mail.dns import Lookup

MAX_LOOKUPS = 10
MAX_VOID = 2  # lookups that find nothing (RFC 7208 4.6.4); more is a permerror
MAX_DEPTH = 12  # include/redirect nesting guard (a loop is also caught by the seen-set)
LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECH = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?::([^/]*))?(?:/(\d+))?(?://(\d+))?$", re.I)
_MOD = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.I)


class SpfError(Exception):
    """A permanent error (RFC 7208 "permerror"): the message says which record and why."""


@dataclass(frozen=True)
class Term:
    """One mechanism (``-ip4:192.0.2.0/24``) or modifier (``redirect=example.com``)."""

    text: str
    name: str
    qualifier: str = "pass"
    value: str = ""
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False


def is_spf(record: str) -> bool:
    """True for a TXT record that declares SPF version 1."""
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def records(lookup: Lookup, domain: str) -> list[str]:
    """Every SPF record published at ``domain`` (there must be exactly one)."""
    return [r for r in lookup.txt(domain) if is_spf(r)]


def parse(record: str) -> list[Term]:
    """Split an SPF record into terms; SpfError names the first term that does not parse."""
    terms = []
    for text in record.split()[1:]:
        mod = _MOD.match(text)
        if mod:
            terms.append(Term(text, mod.group(1).lower(), value=mod.group(2), modifier=True))
            continue
        m = _MECH.match(text)
        name = m.group(2).lower() if m else ""
        if not m or name not in MECHANISMS:
            raise SpfError(f"unknown or malformed term {text!r}")
        value = m.group(3) or ""
        if name in ("include", "exists", "ip4", "ip6") and not value:
            raise SpfError(f"{text!r} needs a value after ':'")
        c4 = int(m.group(4)) if m.group(4) else None
        c6 = int(m.group(5)) if m.group(5) else None
        if name == "ip6" and c4 is not None:
            c4, c6 = None, c4
        if (c4 is not None and c4 > 32) or (c6 is not None and c6 > 128):
            raise SpfError(f"{text!r} has an impossible prefix length")
        if name in ("ip4", "ip6"):
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                raise SpfError(f"{text!r} is not an IP address") from None
            if ip.version != int(name[2]):
                raise SpfError(f"{text!r} is not an IPv{name[2]} address")
        terms.append(Term(text, name, QUALIFIERS[m.group(1) or "+"], value, c4, c6))
    return terms


def one_record(lookup: Lookup, domain: str) -> str:
    """The single SPF record of ``domain``, or SpfError (none, or more than one)."""
    found = records(lookup, domain)
    if len(found) != 1:
        raise SpfError(f"{domain} has {len(found) or 'no'} SPF record{'s' if found else ''}")
    return found[0]


@dataclass
class Evaluation:
    """What evaluating a record found: lookups counted, terms that could not be evaluated."""

    lookups: int = 0
    void: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)


def count_lookups(lookup: Lookup, domain: str, result: Evaluation | None = None,
                  seen: tuple[str, ...] = ()) -> Evaluation:
    """Count the DNS-querying terms a receiver meets when no earlier term matches."""
    result = result or Evaluation()
    if domain in seen or len(seen) > MAX_DEPTH:
        raise SpfError(f"include/redirect loop through {domain}")
    terms = parse(one_record(lookup, domain))
    has_all = any(t.name == "all" for t in terms)
    for term in terms:
        if term.name in LOOKUP_TERMS and not (term.name == "redirect" and has_all):
            result.lookups += 1
        if term.name in ("a", "mx", "exists") and "%" not in term.value:
            target = (term.value or domain).lower()
            found = lookup.mx(target) if term.name == "mx" else lookup.addresses(target)
            if not found:
                result.void.append(term.text)
        if term.name in ("include", "redirect") and not (term.name == "redirect" and has_all):
            if "%" in term.value:
                result.skipped.append(term.text)
                continue
            result.includes.append(term.value.lower())
            count_lookups(lookup, term.value.lower(), result, (*seen, domain))
    return result


def _network(address: str, length: int | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    ip = ipaddress.ip_address(address)
    return ipaddress.ip_network(f"{ip}/{length if length is not None else ip.max_prefixlen}",
                                strict=False)


def _in_any(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addresses: list[str],
            term: Term) -> bool:
    length = term.cidr4 if ip.version == 4 else term.cidr6
    return any(ip in _network(a, length) for a in addresses
               if ipaddress.ip_address(a).version == ip.version)


def check_host(lookup: Lookup, address: str, domain: str, notes: list[str] | None = None,
               depth: int = 0) -> str:
    """RFC 7208 check_host() for one address: pass, fail, softfail, neutral or none.

    SpfError for a permanent error; ``notes`` collects terms that were not evaluated.
    """
    notes = [] if notes is None else notes
    if depth > MAX_DEPTH:
        raise SpfError(f"include/redirect nested deeper than {MAX_DEPTH} at {domain}")
    found = records(lookup, domain)
    if not found:
        return "none"
    if len(found) > 1:
        raise SpfError(f"{domain} has {len(found)} SPF records")
    ip = ipaddress.ip_address(address)
    family = "A" if ip.version == 4 else "AAAA"
    terms = parse(found[0])
    for term in terms:
        if term.modifier:
            continue
        target = (term.value or domain).lower()
        if "%" in target:
            notes.append(f"{term.text} (macros are not evaluated)")
            continue
        if term.name == "all":
            matched = True
        elif term.name in ("ip4", "ip6"):
            matched = _in_any(ip, [term.value], term)
        elif term.name == "a":
            matched = _in_any(ip, lookup.addresses(target, (family,)), term)
        elif term.name == "mx":
            hosts = [h for _, h in lookup.mx(target)][:MAX_LOOKUPS]
            matched = any(_in_any(ip, lookup.addresses(h, (family,)), term) for h in hosts)
        elif term.name == "include":
            inner = check_host(lookup, address, target, notes, depth + 1)
            if inner == "none":
                raise SpfError(f"include:{target} has no SPF record")
            matched = inner == "pass"
        elif term.name == "exists":
            matched = bool(lookup.addresses(target, ("A",)))
        else:  # ptr: deprecated (RFC 7208 5.5); receivers may skip it
            notes.append(f"{term.text} (ptr is deprecated and not evaluated)")
            continue
        if matched:
            return term.qualifier
    redirect = next((t for t in terms if t.name == "redirect"), None)
    if redirect is not None and "%" not in redirect.value:
        inner = check_host(lookup, address, redirect.value.lower(), notes, depth + 1)
        if inner == "none":
            raise SpfError(f"redirect={redirect.value} has no SPF record")
        return inner
    return "neutral"
