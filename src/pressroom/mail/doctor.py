"""``pressroom doctor``: will Gmail, Yahoo and Microsoft accept this sender's bulk mail?

Checks the sender domain (MX, A/AAAA), SPF (one record, at most 10 lookups, the relay
authorised), DKIM (published key = configured key, a signed message verifies), DMARC (present,
parses, aligned with From), the relay's TLS, the one-click unsubscribe endpoint, the
List-Unsubscribe mailto and recent campaigns' bounce and complaint rates. Each finding is a
``Check`` with the exact records read and what to change; nothing is printed here.
"""

from __future__ import annotations

import logging
from typing import Callable

from pressroom.config import Config
from pressroom.errors import MailError
from pressroom.mail import spf
from pressroom.mail.dkimcheck import dkim_check, dmarc_check
from pressroom.mail.dns import DnsError, Lookup
from pressroom.mail.probes import mailto_check, rates_check, tls_check, unsubscribe_check
from pressroom.mail.report import FAIL, PASS, WARN, Check, Report
from pressroom.mail.settings import SmtpSettings, mail_settings, secret_key, smtp_settings

log = logging.getLogger(__name__)


def domain_checks(lookup: Lookup, domain: str) -> list[Check]:
    """The sender domain takes mail (MX) and exists as a host (A/AAAA)."""
    mx = lookup.mx(domain)
    if mx:
        hosts = tuple(f"MX {p} {h}" for p, h in mx)
        checks = [Check("sender MX", PASS, f"{domain} receives mail", hosts)]
    else:
        checks = [Check("sender MX", FAIL, f"{domain} has no MX record: replies and bounces "
                        "cannot reach it, and receivers distrust senders whose domain takes no "
                        "mail", fix=f"add an MX record for {domain} (your mail provider's host)")]
    addresses = lookup.addresses(domain)
    if addresses:
        checks.append(Check("sender address", PASS, f"{domain} has A/AAAA records",
                            tuple(addresses)))
    else:
        checks.append(Check("sender address", WARN, f"{domain} has no A or AAAA record",
                            fix=f"point {domain} at your website's address"))
    return checks


def _authorising_include(includes: list[str], host: str) -> str | None:
    """An include:/redirect= of the relay provider's own domain (e.g. _spf.relay.example)."""
    parent = host.lower().split(".", 1)[-1]
    if "." not in parent:
        return None
    return next((d for d in includes if d == parent or d.endswith("." + parent)), None)


def spf_check(lookup: Lookup, domain: str, relay: SmtpSettings | None) -> Check:
    """One SPF record that parses, needs at most 10 lookups and authorises the relay."""
    found = spf.records(lookup, domain)
    if not found:
        return Check("SPF", FAIL, f"no SPF record (TXT \"v=spf1 ...\") at {domain}",
                     tuple(f"TXT {r}" for r in lookup.txt(domain)),
                     fix=f"publish one TXT record at {domain}, e.g. \"v=spf1 mx -all\" plus "
                         "the include: your mail provider documents")
    if len(found) > 1:
        return Check("SPF", FAIL, f"{domain} has {len(found)} SPF records; receivers treat that as "
                     "a permanent error (RFC 7208 4.5)", tuple(found),
                     fix="merge them into one TXT record that starts with v=spf1")
    record = found[0]
    try:
        counted = spf.count_lookups(lookup, domain)
    except spf.SpfError as exc:
        return Check("SPF", FAIL, f"the SPF record of {domain} does not evaluate: {exc}",
                     (record,), fix="fix or remove that term")
    if counted.lookups > spf.MAX_LOOKUPS:
        return Check("SPF", FAIL, f"the SPF record of {domain} needs {counted.lookups} DNS lookups "
                     "(include, a, mx, ptr, exists, redirect, counted through includes); "
                     "receivers give up after 10 (RFC 7208 4.6.4)", (record,),
                     fix="remove includes you no longer use, or list addresses with ip4:/ip6:")
    if len(counted.void) > spf.MAX_VOID:
        return Check("SPF", FAIL, f"the SPF record of {domain} has {len(counted.void)} terms whose "
                     f"lookups find nothing ({', '.join(counted.void)}); receivers give up after "
                     f"{spf.MAX_VOID} (RFC 7208 4.6.4)", (record,),
                     fix="remove the terms that name hosts without addresses or MX records")
    if relay is None:
        return Check("SPF", WARN, f"{domain} has one SPF record ({counted.lookups} of 10 lookups), "
                     "but no smtp: relay is configured to check it against", (record,))
    return _relay_check(lookup, domain, relay, record, counted)


def _relay_check(lookup: Lookup, domain: str, relay: SmtpSettings, record: str,
                 counted: spf.Evaluation) -> Check:
    """Does the record give the relay's addresses ``pass`` (or include the provider's SPF)?"""
    addresses = lookup.addresses(relay.host)
    if not addresses:
        return Check("SPF", FAIL, f"the relay {relay.host} has no A/AAAA record", (record,),
                     fix="check smtp.host")
    notes: list[str] = []
    try:
        verdicts = {a: spf.check_host(lookup, a, domain, notes) for a in addresses}
    except spf.SpfError as exc:
        return Check("SPF", FAIL, f"the SPF record of {domain} does not evaluate: {exc}",
                     (record,), fix="fix or remove that term")
    failing = [a for a, v in verdicts.items() if v != "pass"]
    if not failing:
        return Check("SPF", PASS, f"{domain} authorises the relay {relay.host} "
                     f"({', '.join(addresses)}) with {counted.lookups} of 10 lookups", (record,))
    include = _authorising_include(counted.includes, relay.host)
    if include:
        return Check("SPF", PASS, f"{domain} includes {include}, the relay provider's SPF, with "
                     f"{counted.lookups} of 10 lookups", (record,))
    a = failing[0]
    term = f"ip6:{a}" if ":" in a else f"ip4:{a}"
    skipped = f"; not evaluated: {', '.join(notes)}" if notes else ""
    return Check("SPF", FAIL, f"the SPF record of {domain} does not authorise the relay "
                 f"{relay.host} ({a} gets {verdicts[a]}){skipped}", (record,),
                 fix=f"add {term} (or the include: your mail provider documents) before the "
                     "all term")


def _dns(check: Callable[[], Check | list[Check]], name: str) -> list[Check]:
    try:
        result = check()
    except DnsError as exc:
        return [Check(name, FAIL, exc.message, fix="check the nameserver and try again")]
    return result if isinstance(result, list) else [result]


def run_doctor(config: Config, *, nameserver: str | None = None, base_url: str | None = None,
               offline: bool = False) -> Report:
    """Run every deliverability check for the project's sender and relay; return the Report.

    ``nameserver`` ("IP" or "IP:PORT") replaces the system resolver; ``base_url`` replaces the
    scheme and host of the unsubscribe URL (to probe a service before DNS points at it);
    ``offline=True`` skips the probes that connect to the relay and the web service. Example:
    ``run_doctor(load_config("."), nameserver="127.0.0.1:5353").exit_code()``.
    """
    settings, smtp = mail_settings(config), smtp_settings(config)
    lookup = Lookup(nameserver)
    domain = settings.sender_domain
    dkim = smtp.dkim if smtp else None
    report = Report()
    for check in (
        *_dns(lambda: domain_checks(lookup, domain), "sender MX"),
        *_dns(lambda: spf_check(lookup, domain, smtp), "SPF"),
        *_dns(lambda: dkim_check(lookup, dkim, settings.sender), "DKIM"),
        *_dns(lambda: dmarc_check(lookup, domain, dkim), "DMARC"),
    ):
        report.add(check)
    if not offline:
        report.add(tls_check(smtp, domain))
        try:
            report.add(unsubscribe_check(settings, secret_key(), base_url))
        except MailError as exc:
            report.add(Check("one-click unsubscribe", FAIL, exc.message))
    for check in _dns(lambda: mailto_check(lookup, settings), "unsubscribe mailto"):
        report.add(check)
    report.add(rates_check(settings, settings.max_hard_bounce_rate,
                           settings.max_complaint_rate))
    log.info("doctor: %s (%d DNS queries)", report.summary(), lookup.queries)
    return report
