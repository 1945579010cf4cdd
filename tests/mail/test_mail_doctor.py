"""`pressroom doctor` against a real DNS server on 127.0.0.1 serving a good zone and broken ones."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from click.testing import CliRunner
from dnstest import txt
from mailtest import Recorder, add_subscribers, config_of, make_project, smtp_section
from projects import self_signed, smtp_sink
from sitetest import LiveServer

from pressroom.mail.cli import doctor, send
from pressroom.mail.dkimcheck import public_record
from pressroom.mail.doctor import run_doctor
from pressroom.web import create_app

DOMAIN = "juvenology.co.uk"
SPF = "v=spf1 mx include:_spf.relay.test -all"
DMARC = f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_relay(tmp_path_factory):
    """A STARTTLS relay on 127.0.0.1 with a self-signed certificate (trusted via SSL_CERT_FILE)."""
    context, cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    recorder = Recorder()
    with smtp_sink(recorder, tls_context=context, require_starttls=True) as controller:
        controller.cert, controller.key, controller.recorder = cert, key, recorder
        yield controller


@pytest.fixture(scope="module")
def https_live(tls_relay):
    """The subscription service over HTTPS on 127.0.0.1 (the relay's certificate), so `send`
    probes the configured unsubscribe URL itself."""
    server = LiveServer()
    server.server.socket = ssl_wrap(server.server.socket, tls_relay.cert, tls_relay.key)
    yield server
    server.close()


def ssl_wrap(sock, cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context.wrap_socket(sock, server_side=True)


def zone(dkim_record: str, spf: tuple[str, ...] = (SPF,), dmarc: tuple[str, ...] = (DMARC,),
         dkim_name: str = "news._domainkey", extra: str = "") -> str:
    """The demo domain's zone; each argument replaces one part with a broken variant."""
    lines = [f"$ORIGIN {DOMAIN}.", "$TTL 300", f"@ IN MX 10 mx.{DOMAIN}.", "@ IN A 192.0.2.80",
             "mx IN A 192.0.2.25", f"{dkim_name} IN TXT {txt(dkim_record)}",
             f"_spf.relay.test. IN TXT {txt('v=spf1 ip4:127.0.0.0/24 -all')}",
             "@ IN TXT \"google-site-verification=abc\""]
    lines += [f"@ IN TXT {txt(r)}" for r in spf]
    lines += [f"_dmarc IN TXT {txt(r)}" for r in dmarc]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def good(dns, dkim_key, tls_relay, live, tmp_path, monkeypatch):
    """A project whose every check passes: DKIM key published, STARTTLS relay, live service."""
    key_file, record = dkim_key
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_relay.cert))
    project = make_project(tmp_path, {"host": "127.0.0.1", "port": tls_relay.port, "timeout": 5,
                                      "dkim": {"domain": DOMAIN, "selector": "news",
                                               "key_file": str(key_file)}})
    live.app = create_app(config_of(project))
    dns.zone.load(zone(record.decode("ascii")))
    return project


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def run(project, dns, live, **kwargs):
    return run_doctor(config_of(project), nameserver=dns.nameserver, base_url=live.url, **kwargs)


def test_the_published_record_is_the_one_openssl_derives(dkim_key):
    key_file, record = dkim_key
    assert public_record(key_file.read_bytes()) == record.decode("ascii")


def test_good_zone_passes_every_check(good, dns, live, tls_relay, dkim_key):
    report = run(good, dns, live)

    assert [(c.name, c.status) for c in report.checks] == [
        ("sender MX", "pass"), ("sender address", "pass"), ("SPF", "pass"), ("DKIM", "pass"),
        ("DMARC", "pass"), ("relay TLS", "pass"), ("one-click unsubscribe", "pass"),
        ("unsubscribe mailto", "pass"), ("campaign rates", "pass")]
    checks = by_name(report)
    assert checks["SPF"].lines() == [
        f"PASS SPF: {DOMAIN} authorises the relay 127.0.0.1 (127.0.0.1) with 2 of 10 lookups",
        f"  read: {SPF}"]
    assert checks["DKIM"].lines() == [
        f"PASS DKIM: news._domainkey.{DOMAIN} holds the public key of {dkim_key[0]}; a signed "
        "test message verifies", f"  read: {dkim_key[1].decode()}"]
    assert checks["DMARC"].lines() == [
        f"PASS DMARC: _dmarc.{DOMAIN}: p=quarantine, DKIM d={DOMAIN} aligned with From (relaxed)",
        f"  read: {DMARC}"]
    assert checks["relay TLS"].message == f"127.0.0.1:{tls_relay.port} offers STARTTLS (TLSv1.3)"
    assert checks["one-click unsubscribe"].message == (
        f"POST {live.url}/unsubscribe (List-Unsubscribe=One-Click) answered 200 without a "
        "redirect")
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 0


SPF_FIX = ("add ip4:127.0.0.1 (or the include: your mail provider documents) before the all term")
NINE_A = "v=spf1 " + " ".join(f"a:h{i}.relay.test" for i in range(9))
HOSTS = "".join(f"h{i}.relay.test. IN A 192.0.2.{100 + i}\n" for i in range(9))
OVER_LIMIT = ("v=spf1 mx a include:_spf1.relay.test include:_spf.relay.test -all",
              f"_spf1.relay.test. IN TXT {txt(NINE_A + ' -all')}\n{HOSTS}")


@pytest.mark.parametrize(("spf", "extra", "lines"), [
    ((), "", [f'FAIL SPF: no SPF record (TXT "v=spf1 ...") at {DOMAIN}',
              "  read: TXT google-site-verification=abc",
              f'  fix: publish one TXT record at {DOMAIN}, e.g. "v=spf1 mx -all" plus the '
              "include: your mail provider documents"]),
    (("v=spf1 mx -all",), "", [
        f"FAIL SPF: the SPF record of {DOMAIN} does not authorise the relay 127.0.0.1 "
        "(127.0.0.1 gets fail)", "  read: v=spf1 mx -all", f"  fix: {SPF_FIX}"]),
    ((SPF, "v=spf1 ip4:127.0.0.1 ~all"), "", [
        f"FAIL SPF: {DOMAIN} has 2 SPF records; receivers treat that as a permanent error "
        "(RFC 7208 4.5)", f"  read: {SPF}", "  read: v=spf1 ip4:127.0.0.1 ~all",
        "  fix: merge them into one TXT record that starts with v=spf1"]),
    ((OVER_LIMIT[0],), OVER_LIMIT[1], [
        f"FAIL SPF: the SPF record of {DOMAIN} needs 13 DNS lookups (include, a, mx, ptr, exists, "
        "redirect, counted through includes); receivers give up after 10 (RFC 7208 4.6.4)",
        f"  read: {OVER_LIMIT[0]}",
        "  fix: remove includes you no longer use, or list addresses with ip4:/ip6:"]),
    (("v=spf1 a:old.relay.test a:gone.relay.test mx:www.relay.test ip4:127.0.0.1 -all",), "", [
        f"FAIL SPF: the SPF record of {DOMAIN} has 3 terms whose lookups find nothing "
        "(a:old.relay.test, a:gone.relay.test, mx:www.relay.test); receivers give up after 2 "
        "(RFC 7208 4.6.4)",
        "  read: v=spf1 a:old.relay.test a:gone.relay.test mx:www.relay.test ip4:127.0.0.1 -all",
        "  fix: remove the terms that name hosts without addresses or MX records"]),
], ids=["no-spf", "relay-not-authorised", "two-spf-records", "over-10-lookups", "void-lookups"])
def test_broken_spf_fails_the_spf_check_quoting_the_record(good, dns, live, dkim_key, spf, extra,
                                                           lines):
    dns.zone.load(zone(dkim_key[1].decode(), spf=spf, extra=extra))

    report = run(good, dns, live, offline=True)

    assert by_name(report)["SPF"].lines() == lines
    assert [c.name for c in report.failed] == ["SPF"]
    assert report.exit_code() == 1


def test_ten_lookups_is_still_within_the_limit(good, dns, live, dkim_key):
    at_limit = "v=spf1 include:_spf1.relay.test ip4:127.0.0.1 -all"
    dns.zone.load(zone(dkim_key[1].decode(), spf=(at_limit,),
                       extra=f"_spf1.relay.test. IN TXT {txt(NINE_A)}\n{HOSTS}"))

    check = by_name(run(good, dns, live, offline=True))["SPF"]

    assert check.status == "pass" and check.message.endswith("with 10 of 10 lookups")


@pytest.fixture(scope="module")
def other_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("other") / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True,
                   capture_output=True)
    return public_record(key.read_bytes())


def test_wrong_dkim_key_fails_the_dkim_check(good, dns, live, dkim_key, other_key):
    dns.zone.load(zone(other_key))

    report = run(good, dns, live, offline=True)

    assert by_name(report)["DKIM"].lines() == [
        f"FAIL DKIM: the public key at news._domainkey.{DOMAIN} does not match {dkim_key[0]}",
        f"  read: {other_key}",
        f"  fix: publish this TXT record at news._domainkey.{DOMAIN}: {dkim_key[1].decode()}"]
    assert [c.name for c in report.failed] == ["DKIM"]


def test_missing_dkim_record_says_what_to_publish(good, dns, live, dkim_key):
    dns.zone.load(zone(dkim_key[1].decode(), dkim_name="old._domainkey"))

    assert by_name(run(good, dns, live, offline=True))["DKIM"].lines() == [
        f"FAIL DKIM: no TXT record at news._domainkey.{DOMAIN}",
        f"  fix: publish this TXT record at news._domainkey.{DOMAIN}: {dkim_key[1].decode()}"]


def test_no_dmarc_fails_the_dmarc_check(good, dns, live, dkim_key):
    dns.zone.load(zone(dkim_key[1].decode(), dmarc=()))

    report = run(good, dns, live, offline=True)

    assert by_name(report)["DMARC"].lines() == [
        f"FAIL DMARC: no DMARC record at _dmarc.{DOMAIN}",
        f"  fix: publish a TXT record at _dmarc.{DOMAIN}, e.g. v=DMARC1; p=quarantine; "
        f"rua=mailto:dmarc-reports@{DOMAIN}"]
    assert [c.name for c in report.failed] == ["DMARC"]


@pytest.mark.parametrize(("adkim", "status"), [("s", "fail"), ("r", "pass")])
def test_dmarc_alignment_follows_adkim(dns, live, dkim_key, tmp_path, adkim, status):
    key_file, record = dkim_key
    project = make_project(tmp_path, {"host": "127.0.0.1", "port": 25, "dkim": {
        "domain": f"mail.{DOMAIN}", "selector": "news", "key_file": str(key_file)}})
    dmarc = f"v=DMARC1; p=reject; adkim={adkim}"
    dns.zone.load(zone(record.decode(), dmarc=(dmarc,), dkim_name="news._domainkey.mail"))

    report = run(project, dns, live, offline=True)

    checks = by_name(report)
    assert checks["DKIM"].status == "pass"
    assert checks["DMARC"].status == status
    if status == "fail":
        assert checks["DMARC"].lines() == [
            f"FAIL DMARC: DKIM d=mail.{DOMAIN} is not aligned with From {DOMAIN} under strict "
            "alignment (adkim=s)", f"  read: {dmarc}",
            f"  fix: sign with smtp.dkim.domain: {DOMAIN} or relax the record to adkim=r"]


def test_p_none_warns_and_strict_exits_2(good, dns, live, dkim_key):
    dmarc = "v=DMARC1; p=none"
    dns.zone.load(zone(dkim_key[1].decode(), dmarc=(dmarc,)))

    report = run(good, dns, live)

    assert by_name(report)["DMARC"].lines() == [
        f"WARN DMARC: _dmarc.{DOMAIN} is aligned (relaxed) but p=none asks receivers to do nothing "
        "with failing mail", f"  read: {dmarc}",
        "  fix: once reports show your mail passes, move to p=quarantine"]
    assert not report.failed
    assert (report.exit_code(), report.exit_code(strict=True)) == (0, 2)


def test_unsubscribe_redirect_fails(good, dns, live):
    def redirecting(environ, start_response):
        start_response("302 Found", [("Location", "https://example.invalid/login")])
        return [b""]

    live.app = redirecting
    check = by_name(run(good, dns, live))["one-click unsubscribe"]

    assert check.lines() == [
        f"FAIL one-click unsubscribe: POST {live.url}/unsubscribe (List-Unsubscribe=One-Click) "
        "answered 302: a redirect",
        "  fix: RFC 8058 needs 200 to the POST itself; serve `pressroom serve` there directly "
        "(no login page, no redirect to https or www)"]


def test_relay_without_starttls_fails(dns, live, dkim_key, tmp_path, server):
    project = make_project(tmp_path, smtp_section(server, security="starttls"))
    dns.zone.load(zone(dkim_key[1].decode()))

    check = by_name(run(project, dns, live))["relay TLS"]

    assert check.lines() == [
        f"FAIL relay TLS: 127.0.0.1:{server.port} does not offer STARTTLS; set smtp.security to "
        "ssl (port 465) or, for a local relay only, none"]


def test_cli_prints_each_check_and_exits_1_on_failure(good, dns, live, dkim_key):
    dns.zone.load(zone(dkim_key[1].decode(), dmarc=()))

    result = CliRunner().invoke(doctor, ["--project", str(good), "--nameserver", dns.nameserver,
                                         "--base-url", live.url])

    assert result.exit_code == 1
    assert f"FAIL DMARC: no DMARC record at _dmarc.{DOMAIN}\n" in result.output
    assert f"PASS SPF: {DOMAIN} authorises the relay" in result.output
    assert result.output.endswith("8 passed, 0 warnings, 1 failed\n")


@pytest.fixture
def send_project(dns, dkim_key, tls_relay, https_live, tmp_path, monkeypatch):
    """A project whose configured unsubscribe URL is the HTTPS service above, with 3 readers."""
    key_file = dkim_key[0]
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_relay.cert))
    tls_relay.recorder.reset()
    project = make_project(
        tmp_path, {"host": "127.0.0.1", "port": tls_relay.port, "timeout": 5, "dkim": {
            "domain": DOMAIN, "selector": "news", "key_file": str(key_file)}},
        {"unsubscribe_url": f"https://127.0.0.1:{https_live.server.server_port}/unsubscribe"})
    https_live.app = create_app(config_of(project))
    add_subscribers(project, 3)
    return project


def test_send_runs_the_doctor_first_and_stops_on_a_failure(send_project, dns, dkim_key,
                                                           tls_relay):
    dns.zone.load(zone(dkim_key[1].decode(), spf=()))

    refused = CliRunner().invoke(send, ["01-welcome", "--project", str(send_project),
                                        "--nameserver", dns.nameserver])

    assert refused.exit_code == 1
    assert f'FAIL SPF: no SPF record (TXT "v=spf1 ...") at {DOMAIN}\n' in refused.output
    assert "PASS" not in refused.output  # only the problems are shown before a send
    assert refused.output.endswith(
        "Error: deliverability checks failed (8 passed, 0 warnings, 1 failed); fix the findings "
        "above (`pressroom doctor` shows them all), or send anyway with --skip-doctor\n")
    assert tls_relay.recorder.count() == 0

    skipped = CliRunner().invoke(send, ["01-welcome", "--project", str(send_project),
                                        "--skip-doctor"])
    assert skipped.exit_code == 0, skipped.output
    assert skipped.output.endswith("deliverability checks: skipped (--skip-doctor)\n")
    assert tls_relay.recorder.count() == 3


def test_send_with_a_healthy_setup_reports_the_checks(send_project, dns, dkim_key, tls_relay):
    dns.zone.load(zone(dkim_key[1].decode()))

    run = CliRunner().invoke(send, ["01-welcome", "--project", str(send_project),
                                    "--nameserver", dns.nameserver])

    assert run.exit_code == 0, run.output
    assert run.output.endswith("deliverability checks: 9 passed, 0 warnings, 0 failed\n")
    assert tls_relay.recorder.count() == 3


def test_a_dns_server_failure_fails_that_check_without_a_traceback(good, dns, live, dkim_key):
    dns.zone.load(zone(dkim_key[1].decode()), servfail=(f"_dmarc.{DOMAIN}.",))

    report = run(good, dns, live, offline=True)

    check = by_name(report)["DMARC"]
    assert check.status == "fail"
    assert check.message.startswith(f"could not look up TXT _dmarc.{DOMAIN}: ")
    assert check.fix == "check the nameserver and try again"
    assert [c.name for c in report.failed] == ["DMARC"]


def test_cli_strict_exits_2_on_warnings(good, dns, live, dkim_key):
    dns.zone.load(zone(dkim_key[1].decode(), dmarc=("v=DMARC1; p=none",)))
    args = ["--project", str(good), "--nameserver", dns.nameserver, "--base-url", live.url]

    lenient = CliRunner().invoke(doctor, args)
    strict = CliRunner().invoke(doctor, [*args, "--strict"])

    assert (lenient.exit_code, strict.exit_code) == (0, 2)
    assert strict.output.endswith("8 passed, 1 warnings, 0 failed\n")


@pytest.mark.parametrize("dmarc", ["v=DMARC1; p=maybe", "v=DMARC1; p=reject; aspf=x",
                                   "v=DMARC1; p=reject; rua"])
def test_unparsable_dmarc_fails_quoting_it(good, dns, live, dkim_key, dmarc):
    dns.zone.load(zone(dkim_key[1].decode(), dmarc=(dmarc,)))

    check = by_name(run(good, dns, live, offline=True))["DMARC"]

    assert check.status == "fail" and check.records == (dmarc,)
    assert check.message in (
        f"the record at _dmarc.{DOMAIN} needs p=none|quarantine|reject (and adkim, aspf r or s "
        "when given)", f"the record at _dmarc.{DOMAIN} does not parse: 'rua' is not a tag=value "
        "pair")
