"""`pressroom init`: a small, valid starter project from the files in ``pressroom/scaffold/``.

The starter's texts say "Replace this text"; `pressroom check` warns about every one left
(see :mod:`pressroom.placeholders`).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

import jinja2

from pressroom.errors import PressroomError
from pressroom.output import write_all

SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Answers:
    """What `pressroom init` asks for. The defaults are placeholders `check` flags."""

    title: str = "My Guide"
    author: str = "Your Name"
    practice: str = "Your Practice"
    website: str = "https://www.example.com"
    sender: str = "newsletter@example.com"


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by hyphens: 'Back Care: A Guide' -> 'back-care-a-guide'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "guide"


def _check(answers: Answers) -> None:
    for name in ("title", "author", "practice"):
        if not getattr(answers, name).strip():
            raise PressroomError(f"--{name} must not be empty")
    if not answers.website.startswith(("https://", "http://")):
        raise PressroomError(f"--website must be a full URL starting with https://, "
                             f"got {answers.website!r}")
    if not _EMAIL.match(answers.sender):
        raise PressroomError(f"--sender must be an email address, got {answers.sender!r}")


def init_project(target: Path, answers: Answers, today: _dt.date | None = None) -> list[Path]:
    """Write a starter project into ``target`` (created when missing); return the files.

    Refuses a folder that already holds a project (``content/publication.yaml``).

    Example::

        init_project(Path("back-care"), Answers(title="Back Care", practice="Oak Physio"))
    """
    target = Path(target)
    if (target / "content" / "publication.yaml").exists():
        raise PressroomError(f"{target} already holds a Pressroom project "
                             "(content/publication.yaml); choose a new folder")
    _check(answers)
    today = today or _dt.date.today()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    # JSON strings are valid YAML double-quoted scalars: any title stays one value.
    env.filters["yaml"] = lambda value: json.dumps(str(value), ensure_ascii=False)
    values = {"title": answers.title.strip(), "author": answers.author.strip(),
                  "practice": answers.practice.strip(), "website": answers.website.strip(),
                  "sender": answers.sender.strip(), "slug": slugify(answers.title),
                  "uuid": uuid.uuid4(), "today": today.isoformat(), "year": today.year,
                  "role": "Replace this text"}
    files: dict[Path, bytes | str] = {}
    for source in sorted(SCAFFOLD.rglob("*")):
        if not source.is_file() or "__pycache__" in source.parts:
            continue
        rel = source.relative_to(SCAFFOLD)
        if source.suffix == ".svg":
            files[target / rel] = source.read_bytes()
        else:
            template = env.from_string(source.read_text(encoding="utf-8"))
            files[target / rel] = template.render(values)
    return sorted(write_all(files))
