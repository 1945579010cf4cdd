"""Click commands for subscribers, sending, bounces and the store's schema (`db`): parse, call one
library function, show."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pressroom.cli import project_options
from pressroom.config import Config
from pressroom.errors import MailError
from pressroom.mail.store import STATUSES

if TYPE_CHECKING:
    from pressroom.mail.campaign import SendResult
    from pressroom.mail.report import Report

# The library is imported inside each command: listing commands must stay fast.

SHOWN_ADDRESSES = 50
# `send` exits with this when the campaign is paused (sysexits EX_TEMPFAIL): nothing was lost,
# run the same command again (after fixing what the message names) to resume.
PAUSED_EXIT = 75


class CampaignPaused(MailError):
    """The campaign paused; exit code PAUSED_EXIT so scripts can tell it from a failure."""

    exit_code = PAUSED_EXIT


@click.group()
def subscribers() -> None:
    """Manage the subscriber list (stored in SQLite, outside output/).

    \b
    Example:
      pressroom subscribers import members.csv --dry-run
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--suppressions", is_flag=True,
              help="FILE is a suppression list: suppress every address in it.")
@project_options
def import_command(config: Config, file: Path, dry_run: bool, suppressions: bool) -> None:
    """Import subscribers (or, with --suppressions, a suppression list) from a CSV file.

    Accepts Mailchimp's exports ("Email Address", "First Name", "Last Name", "TAGS", and the
    unsubscribed/cleaned files), our own export, or plain email,first_name,last_name,tags
    columns. A status column (subscribed, pending, unsubscribed, cleaned, bounced, complained,
    suppressed) is honoured: every opt-out is recorded and never revived. Invalid rows are
    reported as FILE.csv:LINE: reason and the valid rows are imported. Re-running is safe.

    \b
    Examples:
      pressroom subscribers import mailchimp-export.csv
      pressroom subscribers import old-suppressions.csv --suppressions
    """
    from pressroom.mail.importing import import_subscribers

    result = import_subscribers(config, file, dry_run=dry_run, suppressions=suppressions)
    for problem in result.problems:
        click.echo(problem, err=True)
    verb = "would add" if dry_run else "added"
    click.echo(f"{file}: {verb} {result.added}, updated {result.updated}, unchanged "
               f"{result.unchanged}, suppressed (not re-subscribed) {result.suppressed}, "
               f"opt-outs recorded {result.opt_outs}, not imported {result.not_imported}, "
               f"duplicates {result.duplicates}, invalid {len(result.problems)}")


@subscribers.command("add")
@click.argument("email")
@click.option("--first-name", default="", help="First name (used in the greeting).")
@click.option("--last-name", default="", help="Last name.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@project_options
def add_command(config: Config, email: str, first_name: str, last_name: str,
                tags: tuple[str, ...]) -> None:
    """Add one subscriber.

    \b
    Example:
      pressroom subscribers add ann@example.com --first-name Ann --tag clinic
    """
    from pressroom.mail.subscribers import add_subscriber

    subscriber = add_subscriber(config, email, first_name=first_name, last_name=last_name,
                                tags=tags)
    click.echo(f"added {subscriber.email} (id {subscriber.id})")


@subscribers.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None,
              help="Only subscribers with this status.")
@project_options
def list_command(config: Config, status: str | None) -> None:
    """List subscribers: email, status, name and tags, tab-separated.

    \b
    Example:
      pressroom subscribers list --status subscribed
    """
    from pressroom.mail.subscribers import list_subscribers

    for s in list_subscribers(config, status):
        click.echo("\t".join((s.email, s.status, s.name, ",".join(s.tags))))


@subscribers.command("unsubscribe")
@click.argument("email", required=False)
@click.option("--token", default=None, help="The token from an unsubscribe link (?t=...).")
@project_options
def unsubscribe_command(config: Config, email: str | None, token: str | None) -> None:
    """Unsubscribe an address (or the owner of an unsubscribe link's token).

    The address goes on the suppression list, so no later import re-subscribes it.

    \b
    Examples:
      pressroom subscribers unsubscribe bob@example.com
      pressroom subscribers unsubscribe --token AQAAAAAAAAAq...
    """
    from pressroom.mail.subscribers import unsubscribe

    subscriber, address = unsubscribe(config, email, token)
    if subscriber is None:
        click.echo(f"{address} is not a subscriber; added to the suppression list")
    else:
        click.echo(f"unsubscribed {address}")


@subscribers.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@project_options
def export_command(config: Config, file: Path | None) -> None:
    """Export every subscriber and the suppression list as CSV (to FILE, or standard output).

    Status, consent source and time, and each address's suppression are included, so
    importing the file into a new store keeps every opt-out. Cells a spreadsheet would run as
    a formula (starting with = + - @, tab or CR) are prefixed with ' (undone on import).

    \b
    Example:
      pressroom subscribers export backup.csv
    """
    from pressroom.mail.subscribers import export_lines, export_subscribers

    if file is None:
        for line in export_lines(config):
            click.echo(line, nl=False)
    else:
        click.echo(f"exported {export_subscribers(config, file)} subscribers to {file}", err=True)


@subscribers.command("stats")
@project_options
def stats_command(config: Config) -> None:
    """Show subscribers per status, suppressions and each campaign's delivery counts.

    \b
    Example:
      pressroom subscribers stats
    """
    from pressroom.mail.subscribers import subscriber_stats

    stats = subscriber_stats(config)
    click.echo(f"store: {stats.store}")
    click.echo("subscribers: " + ", ".join(f"{k} {v}" for k, v in stats.subscribers.items()))
    click.echo("suppressed: " + (", ".join(f"{k} {v}" for k, v in stats.suppressions.items())
                                 or "none"))
    for c in stats.campaigns:
        counts = ", ".join(f"{k} {v}" for k, v in c.counts.items())
        status = f"paused: {c.paused_reason}" if c.paused_reason else c.status
        click.echo(f"campaign {c.issue} ({status}): {counts or 'no recipients'}")


def _summary(result: "SendResult") -> None:
    if result.mode == "test":
        click.echo(f"sent a test copy of {result.issue} via {result.destination}")
        return
    if result.mode == "dry-run":
        click.echo(f"dry run: rendered {result.rendered} messages for {result.issue}, sent nothing "
                   f"(would skip {result.counts.get('skipped', 0)}, cannot send "
                   f"{result.counts.get('failed', 0)})")
    else:
        c = result.counts
        click.echo(f"{result.issue} via {result.destination}: sent {c['sent']} "
                   f"({result.sent_now} this run), deferred {c['retry']}, failed {c['failed']}, "
                   f"unknown {c['unknown']}, skipped {c['skipped']}, pending {c['pending']}")
        if ", " in result.destination:  # several relays: who accepted how many
            for relay, accepted in result.relays:
                click.echo(f"  accepted by {relay}: {accepted}")
    for label, rows in (("failed", result.failed), ("unknown", result.unknown)):
        for address, reply in rows[:SHOWN_ADDRESSES]:
            click.echo(f"  {label}: {address}: {reply}")
        if len(rows) > SHOWN_ADDRESSES:
            click.echo(f"  ... and {len(rows) - SHOWN_ADDRESSES} more {label}")
    if result.unknown:
        click.echo("Unknown deliveries may have arrived; re-send them only with --resend-unknown.")


def _show_checks(report: "Report", only_problems: bool = False) -> None:
    for check in report.checks:
        if only_problems and check.status == "pass":
            continue
        colour = {"fail": "red", "warn": "yellow"}.get(check.status)
        for number, line in enumerate(check.lines()):
            click.secho(line, fg=colour if number == 0 else None)


@click.command()
@click.option("--nameserver", metavar="IP[:PORT]", default=None,
              help="Ask this DNS server instead of the system resolver.")
@click.option("--base-url", metavar="URL", default=None,
              help="Probe the unsubscribe endpoint at this scheme and host instead of the "
                   "configured public URL, e.g. http://127.0.0.1:8000.")
@click.option("--offline", is_flag=True,
              help="Only DNS and store checks: do not connect to the relay or the web service.")
@click.option("--strict", is_flag=True, help="Exit with status 2 when any check warns.")
@project_options
def doctor(config: Config, nameserver: str | None, base_url: str | None, offline: bool,
           strict: bool) -> None:
    """Check that mail from this project will be accepted by Gmail, Yahoo and Microsoft.

    Checks the sender domain (MX, A/AAAA), SPF (one record, at most 10 DNS lookups, the relay
    authorised), DKIM (the published key is the configured one; a signed message verifies),
    DMARC (present, aligned with From; p=none warns), the relay's STARTTLS or TLS, a one-click
    unsubscribe POST (200, no redirect), the List-Unsubscribe mailto and the recent campaigns'
    hard-bounce and complaint rates. Each check prints PASS, WARN or FAIL with the records it
    read and what to change.

    Exit status: 0 when nothing failed, 1 when a check failed, 2 when --strict and a check
    warned. `pressroom send` runs the same checks before a real send.

    \b
    Example:
      pressroom doctor --base-url http://127.0.0.1:8000
    """
    from pressroom.mail.doctor import run_doctor

    report = run_doctor(config, nameserver=nameserver, base_url=base_url,
                        offline=offline)
    _show_checks(report)
    click.echo(report.summary())
    click.get_current_context().exit(report.exit_code(strict))


def _preflight(config: Config, nameserver: str | None, skip: bool) -> str:
    """Run the doctor before a real send; MailError when a check fails. Returns the summary."""
    if skip:
        return "skipped (--skip-doctor)"
    if config.smtp is None:
        return "not run (no smtp: section; messages go to the outbox folder)"
    from pressroom.mail.doctor import run_doctor

    report = run_doctor(config, nameserver=nameserver)
    _show_checks(report, only_problems=True)
    if report.failed:
        raise MailError(f"deliverability checks failed ({report.summary()}); fix the findings "
                        "above (`pressroom doctor` shows them all), or send anyway with "
                        "--skip-doctor")
    return report.summary()


@click.command()
@click.argument("issue")
@click.option("--tag", default=None, help="Only subscribers with this tag.")
@click.option("--test", "test_to", metavar="ADDR", default=None,
              help="Send one [TEST] copy to ADDR, outside the campaign.")
@click.option("--dry-run", is_flag=True, help="Render every message; send nothing.")
@click.option("--resend-unknown", is_flag=True,
              help="Also re-send recipients whose earlier delivery is unknown.")
@click.option("--retry-failed", is_flag=True,
              help="Also re-send failed recipients who are still subscribed and not suppressed.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="At most N messages per second (overrides smtp.rate).")
@click.option("--resume", is_flag=True,
              help="Resume a campaign the circuit-breaker paused, once the cause is fixed.")
@click.option("--skip-doctor", is_flag=True,
              help="Send without the deliverability checks (the summary says so).")
@click.option("--nameserver", metavar="IP[:PORT]", default=None,
              help="DNS server for the deliverability checks (default: the system's).")
@project_options
def send(config: Config, issue: str, tag: str | None, test_to: str | None, dry_run: bool,
         resend_unknown: bool, retry_failed: bool, rate: float | None, resume: bool,
         skip_doctor: bool, nameserver: str | None) -> None:
    """Send the built newsletter ISSUE (its slug) to subscribers.

    Running it again resumes: only recipients not yet sent are mailed. With no smtp: section in
    publication.yaml, messages are written to <out>/outbox/ISSUE/ instead. A real send first
    runs the `pressroom doctor` checks and stops if one fails (--skip-doctor to send anyway).
    Exits with 75 when the campaign paused (e.g. the server deferred everything for
    mail.retry_window seconds): nobody is lost, run the same command again to resume. A
    campaign paused by its circuit-breaker (too many hard bounces or complaints) resumes only
    with --resume, after the cause is fixed. Without a terminal (cron) it logs a progress line
    every 500 messages or 30 seconds.

    \b
    Examples:
      pressroom send 01-welcome --test me@example.com
      pressroom send 01-welcome --rate 5
      pressroom send 01-welcome --retry-failed
    """
    import logging

    from pressroom.mail.progress import LOGGER

    bar: Any = None
    if not sys.stderr.isatty():  # no progress bar: log progress lines instead
        logging.getLogger(LOGGER).setLevel(logging.INFO)

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            if not sys.stderr.isatty():
                return
            bar = click.progressbar(length=total, label=f"sending {issue}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    checks = None
    if test_to is None and not dry_run:
        checks = _preflight(config, nameserver, skip_doctor)
    try:
        from pressroom.mail.campaign import send_campaign

        result = send_campaign(config, issue, tag=tag, test_to=test_to, dry_run=dry_run,
                               resend_unknown=resend_unknown, retry_failed=retry_failed,
                               rate=rate, progress=progress, resume=resume)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    _summary(result)
    if checks is not None:
        click.echo(f"deliverability checks: {checks}")
    if result.paused:
        raise CampaignPaused(f"campaign paused: {result.paused}")


@click.group()
def bounces() -> None:
    """Handle bounce reports (delivery status notifications).

    \b
    Example:
      pressroom bounces process ~/Mail/bounces.mbox
    """


@bounces.command("process")
@click.argument("path", type=click.Path(path_type=Path))
@project_options
def process_command(config: Config, path: Path) -> None:
    """Read an mbox file or Maildir of bounces, complaints and unsubscribe requests.

    Hard bounces (bad address, mailbox disabled) suppress at once; soft ones after
    mail.soft_bounce_limit distinct failed deliveries; policy or content rejections (5.7.x,
    5.6.x) suppress nobody; delay notices are not bounces. Feedback (complaint) reports mark
    the address complained, and mail sent to mail.unsubscribe_mailto unsubscribes its sender.
    Messages already processed are skipped, so re-running on the same mailbox is safe.

    \b
    Example:
      pressroom bounces process /var/mail/bounces
    """
    from pressroom.mail.bounces import process_bounces

    r = process_bounces(config, path)
    click.echo(f"{path}: {r.reports} reports ({r.already_processed} already processed, "
               f"{r.not_reports} other messages): {r.hard} hard, {r.soft} soft, "
               f"{r.policy} policy/content (nobody suppressed), {r.not_bounces} not bounces "
               f"(delayed, relayed, delivered), {r.complaints} complaints, {r.unsubscribes} "
               f"unsubscribe requests; {r.suppressed} newly suppressed")


@click.group()
def outbox() -> None:
    """The outbox of the subscription service's emails (confirmations, notices).

    The service only queues these; its background sender delivers them, retrying temporary
    failures. `outbox flush` does the same from cron, e.g. while the service is stopped.

    \b
    Example:
      pressroom outbox flush
    """


@outbox.command("flush")
@project_options
def flush_command(config: Config) -> None:
    """Send every queued email that is due now; report what is still waiting.

    \b
    Example (cron, every five minutes):
      */5 * * * * cd /srv/clinic && pressroom outbox flush
    """
    from pressroom.mail.outbox import flush_outbox

    r = flush_outbox(config)
    click.echo(f"outbox: sent {r.sent}, deferred {r.deferred}, failed {r.failed}, "
               f"still queued {r.waiting}")


@click.group()
def db() -> None:
    """Create or upgrade the subscriber store (mail.store: a SQLite file or a PostgreSQL URL).

    A new SQLite file is created at the current schema when first used; an older one, and any
    PostgreSQL database, needs `pressroom db upgrade` (safe to run again, or from several hosts
    at once). Back the store up first.

    \b
    Example:
      pressroom db upgrade
    """


@db.command("upgrade")
@project_options
def upgrade_command(config: Config) -> None:
    """Bring mail.store up to this Pressroom's schema (refuses a newer one).

    \b
    Example:
      PGPASSWORD=… pressroom db upgrade
    """
    from pressroom.mail.schema import upgrade_store

    result = upgrade_store(config)
    if result.before == result.after:
        click.echo(f"{result.store}: already at schema {result.after}")
    else:
        click.echo(f"{result.store}: upgraded from schema {result.before} to {result.after}")


@db.command("status")
@project_options
def status_command(config: Config) -> None:
    """Show the store's schema and this Pressroom's; exit 1 when they differ.

    \b
    Example:
      pressroom db status
    """
    from pressroom.mail.schema import store_status

    result = store_status(config)
    if result.before != result.after:
        raise MailError(f"{result.store}: at schema {result.before}, this Pressroom needs "
                        f"{result.after}; run `pressroom db upgrade`")
    click.echo(f"{result.store}: at schema {result.after} (current)")
