"""SPF evaluation (RFC 7208) against a real DNS server: mechanisms, qualifiers, limits."""

from __future__ import annotations

import socket

import pytest
from dnstest import txt

from pressroom.mail import spf
from pressroom.mail.dns import DnsError, Lookup

ZONE = "\n".join([
    "$ORIGIN example.test.", "$TTL 300",
    "@ IN MX 10 mx1.example.test.", "@ IN MX 20 mx2.example.test.",
    "mx1 IN A 192.0.2.25", "mx2 IN AAAA 2001:db8::25",
    "www IN A 198.51.100.7", "list IN A 127.0.0.2",
    f"a IN TXT {txt('v=spf1 a:www.example.test/24 -all')}",
    f"mx IN TXT {txt('v=spf1 mx:example.test -all')}",
    f"ip6 IN TXT {txt('v=spf1 ip6:2001:db8:1::/48 ~all')}",
    f"inc IN TXT {txt('v=spf1 include:a.example.test ?all')}",
    f"red IN TXT {txt('v=spf1 ip4:203.0.113.1 redirect=mx.example.test')}",
    f"ex IN TXT {txt('v=spf1 exists:list.example.test -all')}",
    f"ptr IN TXT {txt('v=spf1 ptr -all')}",
    f"loop IN TXT {txt('v=spf1 include:loop.example.test -all')}",
    f"dead IN TXT {txt('v=spf1 include:nothing.example.test -all')}",
    f"noall IN TXT {txt('v=spf1 ip4:203.0.113.1')}",
    "",
])


@pytest.fixture
def lookup(dns):
    dns.zone.load(ZONE)
    return Lookup(dns.nameserver)


@pytest.mark.parametrize(("domain", "address", "verdict"), [
    ("a", "198.51.100.200", "pass"),           # a:/24 covers the whole /24
    ("a", "198.51.101.1", "fail"),
    ("mx", "192.0.2.25", "pass"),              # an MX host's A record
    ("mx", "2001:db8::25", "pass"),            # and its AAAA
    ("mx", "192.0.2.26", "fail"),
    ("ip6", "2001:db8:1:ffff::1", "pass"),
    ("ip6", "2001:db8:2::1", "softfail"),
    ("ip6", "192.0.2.1", "softfail"),          # an IPv4 address never matches ip6:
    ("inc", "198.51.100.9", "pass"),           # include: passes when the included record passes
    ("inc", "192.0.2.1", "neutral"),           # ... and falls through to ?all when it fails
    ("red", "203.0.113.1", "pass"),
    ("red", "192.0.2.25", "pass"),             # redirect= evaluates the other record
    ("red", "192.0.2.99", "fail"),
    ("ex", "192.0.2.1", "pass"),               # exists: any A record matches
    ("ptr", "192.0.2.1", "fail"),              # ptr is not evaluated
    ("noall", "192.0.2.1", "neutral"),         # no all, no redirect: neutral
    ("missing", "192.0.2.1", "none"),
])
def test_check_host(lookup, domain, address, verdict):
    assert spf.check_host(lookup, address, f"{domain}.example.test") == verdict


def test_void_lookups_are_listed(dns):
    record = "v=spf1 a:gone.example.test mx:www.example.test a -all"
    dns.zone.load(ZONE + f"void IN TXT {txt(record)}\n")
    counted = spf.count_lookups(Lookup(dns.nameserver), "void.example.test")
    assert counted.void == ["a:gone.example.test", "mx:www.example.test", "a"]


def test_lookups_are_counted_through_includes_and_redirects(lookup):
    assert spf.count_lookups(lookup, "inc.example.test").lookups == 2   # include + its a:
    assert spf.count_lookups(lookup, "red.example.test").lookups == 2   # redirect + its mx:
    assert spf.count_lookups(lookup, "ip6.example.test").lookups == 0


@pytest.mark.parametrize(("domain", "message"), [
    ("loop", "include/redirect loop through loop.example.test"),
    ("dead", "nothing.example.test has no SPF record"),
])
def test_broken_includes_are_permanent_errors(lookup, domain, message):
    with pytest.raises(spf.SpfError) as caught:
        spf.count_lookups(lookup, f"{domain}.example.test")
    assert str(caught.value) == message


def test_ptr_is_reported_as_not_evaluated(lookup):
    notes: list[str] = []
    spf.check_host(lookup, "192.0.2.1", "ptr.example.test", notes)
    assert notes == ["ptr (ptr is deprecated and not evaluated)"]


@pytest.mark.parametrize(("record", "message"), [
    ("v=spf1 ip4:nope -all", "'ip4:nope' is not an IP address"),
    ("v=spf1 ip4:2001:db8::1 -all", "'ip4:2001:db8::1' is not an IPv4 address"),
    ("v=spf1 ipv4:192.0.2.1 -all", "unknown or malformed term 'ipv4:192.0.2.1'"),
    ("v=spf1 ip4:192.0.2.0/33 -all", "'ip4:192.0.2.0/33' has an impossible prefix length"),
    ("v=spf1 include -all", "'include' needs a value after ':'"),
])
def test_malformed_terms(record, message):
    with pytest.raises(spf.SpfError) as caught:
        spf.parse(record)
    assert str(caught.value) == message


def test_a_silent_nameserver_fails_fast_after_the_first_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        lookup = Lookup(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.2)
        messages = []
        for name in ("example.test", "other.test"):
            with pytest.raises(DnsError) as caught:
                lookup.txt(name)
            messages.append(caught.value.message)

    assert messages == [
        "could not look up TXT example.test: the nameserver did not answer within 0.2 s",
        "could not look up TXT other.test: the nameserver did not answer within 0.2 s"]
    assert lookup.queries == 1  # the second name was not asked: no second wait
