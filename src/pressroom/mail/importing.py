"""Import subscribers from CSV (Mailchimp's export or plain columns); idempotent, never revives."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pressroom.config import Config
from pressroom.errors import MailError, where
from pressroom.mail.addresses import address_key, normalise_address
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import SUPPRESSING, Store, open_store

log = logging.getLogger(__name__)

# Header (lower-cased, spaces and dashes as underscores) -> field. Unknown columns are ignored.
_COLUMNS = {
    "email_address": "email", "email": "email", "e_mail": "email",
    "first_name": "first_name", "fname": "first_name",
    "last_name": "last_name", "lname": "last_name",
    "tags": "tags",
    "confirm_time": "consent_at", "optin_time": "optin_at",
}
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
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rows(self) -> int:
        """Data rows read (valid or not)."""
        return (self.added + self.updated + self.unchanged + self.suppressed + self.duplicates
                + len(self.problems))


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
                        row[name] = cell.strip()
                yield start, row
        except UnicodeDecodeError as exc:
            raise MailError(f"{where(path)}: not UTF-8 text; save it as 'CSV UTF-8' and "
                            "import again") from exc
        except csv.Error as exc:
            raise MailError(f"{where(path, reader.line_num)}: unreadable CSV ({exc})") from exc


def _tags(value: str) -> list[str]:
    # Mailchimp writes TAGS as "\"VIP\",\"Clinic\""; plain files use commas or semicolons.
    return [t.strip().strip('"').strip() for t in _TAG_SPLIT.split(value) if t.strip().strip('"')]


def import_rows(store: Store, path: Path, result: ImportResult) -> None:
    """Apply every row of ``path`` to an open store, inside the caller's transaction."""
    seen: dict[str, int] = {}
    source = f"import:{path.name}"
    for line, row in _rows(path):
        raw = row.get("email", "")
        try:
            email = normalise_address(raw)
            first, last = row.get("first_name", ""), row.get("last_name", "")
            for label, value in (("first name", first), ("last name", last)):
                if any(ord(ch) < 32 for ch in value):
                    raise MailError(f"the {label} contains a line break or control character")
        except MailError as exc:
            result.problems.append(f"{where(path, line)}: {exc.message}")
            continue
        key = address_key(email)
        if key in seen:
            result.duplicates += 1
            log.info("%s: duplicate of line %d (%s)", where(path, line), seen[key], email)
            continue
        seen[key] = line
        tags = _tags(row.get("tags", ""))
        existing = store.find(email)
        if existing is None and store.suppression(email):
            result.suppressed += 1
            continue
        if existing is None:
            store.insert(email, first_name=first, last_name=last, tags=tags, source=source,
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


def import_subscribers(config: Config, path: Path | str, dry_run: bool = False) -> ImportResult:
    """Import a CSV of subscribers; with ``dry_run`` report the outcome and change nothing.

    Example: ``import_subscribers(config, "members.csv")``. Invalid rows are reported as
    ``members.csv:LINE: reason`` in ``result.problems``; valid rows are imported regardless.
    """
    path = Path(path)
    result = ImportResult(path=path, dry_run=dry_run)
    with open_store(mail_settings(config).store) as store:
        try:
            with store.transaction():
                import_rows(store, path, result)
                if dry_run:
                    raise _Rollback()
        except _Rollback:
            pass
    log.info("imported %s: %d added, %d updated, %d unchanged, %d suppressed, %d invalid",
             path, result.added, result.updated, result.unchanged, result.suppressed,
             len(result.problems))
    return result
