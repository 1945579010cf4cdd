"""Import subscribers from CSV (Mailchimp's export, ours, or plain columns); idempotent, never
revives an opt-out, and every opt-out in the file (status, unsubscribe or clean time, a
suppression list) is recorded, whatever the store said before."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pressroom.config import Config
from pressroom.errors import MailError, where
from pressroom.mail.addresses import address_key, has_control, normalise_address
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import SUPPRESSING, Store, open_store
from pressroom.mail.subscribers import FORMULA_PREFIXES

log = logging.getLogger(__name__)

# Header (lower-cased, spaces and dashes as underscores) -> field. Unknown columns are ignored.
_COLUMNS = {
    "email_address": "email", "email": "email", "e_mail": "email",
    "first_name": "first_name", "fname": "first_name",
    "last_name": "last_name", "lname": "last_name",
    "tags": "tags",
    "confirm_time": "consent_at", "optin_time": "optin_at", "consent_at": "consent_at",
    "consent_source": "consent_source",
    "status": "status", "member_status": "status", "email_marketing": "status",
    "unsub_time": "unsub_time", "clean_time": "clean_time",
    "suppression_reason": "reason", "reason": "reason",
}
# Status in the file -> status here (None: not imported). Mailchimp's "cleaned" means bounced.
STATUS_MAP = {
    "subscribed": "subscribed", "pending": "pending", "unsubscribed": "unsubscribed",
    "cleaned": "bounced", "bounced": "bounced", "complained": "complained",
    "suppressed": "suppressed", "non-subscribed": None, "nonsubscribed": None,
    "transactional": None, "archived": None,
}
# What the suppression list records for an opt-out status when the file gives no reason.
DEFAULT_REASON = {"unsubscribed": "unsubscribed", "bounced": "hard_bounce",
                  "complained": "complained", "suppressed": "unsubscribed"}
_REASON = re.compile(r"^[a-z_]{1,40}$")
_TAG_SPLIT = re.compile(r"[,;|]")


class _Rollback(Exception):
    """Raised inside the import transaction to undo a dry run."""


@dataclass
class ImportResult:
    """What an import did (or, with dry_run, would do)."""

    path: Path
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    duplicates: int = 0
    opt_outs: int = 0
    not_imported: int = 0
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rows(self) -> int:
        """Data rows read (valid or not)."""
        return (self.added + self.updated + self.unchanged + self.suppressed + self.duplicates
                + self.opt_outs + self.not_imported + len(self.problems))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first file line of the record, {field: value}) for each data row."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise MailError(f"{where(path)}: cannot read the file ({exc.strerror})") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise MailError(f"{where(path)}: the file is empty; expected a header row")
            fields = [_COLUMNS.get(re.sub(r"[\s-]+", "_", h.strip().lower())) for h in header]
            if "email" not in fields:
                raise MailError(f"{where(path, 1)}: no email column; name it 'Email Address' "
                                "(Mailchimp) or 'email' (columns: email,first_name,last_name,tags)")
            line = reader.line_num + 1
            for record in reader:
                start, line = line, reader.line_num + 1
                if not any(cell.strip() for cell in record):
                    continue
                row = {}
                for name, cell in zip(fields, record, strict=False):  # short rows are fine
                    if name and name not in row:
                        row[name] = unescape_cell(cell).strip()
                yield start, row
        except UnicodeDecodeError as exc:
            raise MailError(f"{where(path)}: not UTF-8 text; save it as 'CSV UTF-8' and "
                            "import again") from exc
        except csv.Error as exc:
            raise MailError(f"{where(path, reader.line_num)}: unreadable CSV ({exc})") from exc


def _tags(value: str) -> list[str]:
    # Mailchimp writes TAGS as "\"VIP\",\"Clinic\""; plain files use commas or semicolons.
    return [t.strip().strip('"').strip() for t in _TAG_SPLIT.split(value) if t.strip().strip('"')]


def unescape_cell(cell: str) -> str:
    """Undo the export's formula guard: ``'=x`` -> ``=x`` (only before a formula prefix)."""
    return cell[1:] if cell[:1] == "'" and cell[1:].startswith(FORMULA_PREFIXES) else cell


def _status(row: dict[str, str], forced: str | None) -> str | None:
    """The row's status here; MailError for one we do not know."""
    if forced:
        return forced
    if row.get("unsub_time"):
        return "unsubscribed"
    if row.get("clean_time"):
        return "bounced"
    value = row.get("status", "").strip().lower() or "subscribed"
    if value not in STATUS_MAP:
        raise MailError(f"unknown status {value!r}; use one of {', '.join(STATUS_MAP)}")
    return STATUS_MAP[value]


def _reason(row: dict[str, str], status: str) -> str:
    reason = row.get("reason", "").strip().lower()
    if reason and not _REASON.match(reason):
        raise MailError(f"unknown suppression reason {reason!r}; use words and underscores, "
                        "e.g. unsubscribed or hard_bounce")
    return reason or DEFAULT_REASON[status]


def _opt_out(store: Store, email: str, row: dict[str, str], status: str, source: str,
             result: ImportResult) -> None:
    """Record an opt-out from the file: the subscriber (if any) and the suppression list."""
    reason = _reason(row, status)
    existing = store.find(email)
    if existing is None and status != "suppressed":
        store.insert(email, first_name=row.get("first_name", ""),
                     last_name=row.get("last_name", ""), tags=_tags(row.get("tags", "")),
                     status=status, source=row.get("consent_source") or source,
                     consent_at=row.get("consent_at") or row.get("optin_at") or None)
    if store.suppression(email) is None or (existing is not None
                                            and existing.status not in SUPPRESSING):
        store.suppress(email, reason, source, "imported opt-out")
    result.opt_outs += 1


def _row(store: Store, email: str, row: dict[str, str], status: str, source: str,
         result: ImportResult) -> None:
    """Apply one valid row (subscribed or pending) to the store."""
    first, last = row.get("first_name", ""), row.get("last_name", "")
    tags = _tags(row.get("tags", ""))
    existing = store.find(email)
    if existing is None and store.suppression(email):
        result.suppressed += 1
        return
    if existing is None:
        store.insert(email, first_name=first, last_name=last, tags=tags, status=status,
                     source=row.get("consent_source") or source,
                     consent_at=row.get("consent_at") or row.get("optin_at") or None)
        result.added += 1
    elif existing.status in SUPPRESSING:
        result.suppressed += 1  # never revived, not even its names or tags
    else:
        changed = store.update_names(existing.id, first or existing.first_name,
                                     last or existing.last_name)
        changed = store.add_tags(existing.id, tags) > 0 or changed
        if changed:
            store.event("updated", source, existing.id)
        result.updated += changed
        result.unchanged += not changed


def import_rows(store: Store, path: Path, result: ImportResult,
                forced_status: str | None = None) -> None:
    """Apply every row of ``path`` to an open store, inside the caller's transaction."""
    seen: dict[str, int] = {}
    source = f"import:{path.name}"
    for line, row in _rows(path):
        try:
            email = normalise_address(row.get("email", ""))
            for label, key in (("first name", "first_name"), ("last name", "last_name"),
                               ("tags", "tags")):
                if has_control(row.get(key, "")):
                    raise MailError(f"the {label} contains a line break or control character")
            status = _status(row, forced_status)
            if status in DEFAULT_REASON:
                _reason(row, status)
        except MailError as exc:
            result.problems.append(f"{where(path, line)}: {exc.message}")
            continue
        key = address_key(email)
        if key in seen:
            result.duplicates += 1
            log.info("%s: duplicate of line %d (%s)", where(path, line), seen[key], email)
            continue
        seen[key] = line
        if status is None:
            result.not_imported += 1
        elif status in DEFAULT_REASON:
            _opt_out(store, email, row, status, source, result)
        else:
            _row(store, email, row, status, source, result)


def import_subscribers(config: Config, path: Path | str, dry_run: bool = False,
                       suppressions: bool = False) -> ImportResult:
    """Import a CSV of subscribers; with ``dry_run`` report the outcome and change nothing.

    A status column (ours, or Mailchimp's subscribed/unsubscribed/cleaned/pending), an
    UNSUB_TIME or CLEAN_TIME column is honoured: opt-outs are recorded, never revived.
    ``suppressions`` reads the file as a suppression list (every address suppressed, with an
    optional ``reason`` column). Example: ``import_subscribers(config, "members.csv")``.
    Invalid rows are reported as ``members.csv:LINE: reason`` in ``result.problems``; valid
    rows are imported regardless.
    """
    path = Path(path)
    result = ImportResult(path=path, dry_run=dry_run)
    with open_store(mail_settings(config).store) as store:
        try:
            with store.transaction():
                import_rows(store, path, result, "suppressed" if suppressions else None)
                if dry_run:
                    raise _Rollback()
        except _Rollback:
            pass
    log.info("imported %s: %d added, %d updated, %d unchanged, %d suppressed, %d invalid",
             path, result.added, result.updated, result.unchanged, result.suppressed,
             len(result.problems))
    return result
