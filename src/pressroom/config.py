"""Read ``content/publication.yaml`` (plus CLI overrides) into one frozen Config."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping, overload

from pressroom.errors import ConfigError, ContentError
from pressroom.fields import Fields, load_yaml, read_text

PAPER_SIZES = ("a4", "letter")
# A slug: lowercase words joined by hyphens (the publication's and every content file's).
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Author:
    """The publication's author."""

    name: str
    role: str
    bio: str  # Markdown


@dataclass(frozen=True)
class Contact:
    """How readers reach the practice."""

    email: str
    phone: str | None
    address: tuple[str, ...]


@dataclass(frozen=True)
class Brand:
    """The practice's look: name, logo (SVG in content/), colour and font tokens that override
    the theme's."""

    name: str | None = None
    logo: str | None = None  # relative to content/
    colours: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fonts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class NewsletterSettings:
    """Sender identity and the links every newsletter carries."""

    sender_name: str
    sender_address: str
    reply_to: str | None
    signup_url: str
    booking_url: str | None
    fallback_name: str


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Config:
    """Everything ``publication.yaml`` says, validated, plus where the project and output live."""

    project: Path
    path: Path
    title: str
    subtitle: str
    slug: str
    language: str
    identifier: str
    date: _dt.date
    author: Author
    publisher: str
    rights: str
    description: str
    subjects: tuple[str, ...]
    website: str
    contact: Contact
    newsletter: NewsletterSettings
    disclaimer: str
    limitations: str | None = None
    cover_illustration: str | None = None  # relative to content/
    quick_reference: str | None = None  # slug of the daily routine the quick reference shows
    brand: Brand = field(default_factory=Brand)
    paper: str = "a4"
    theme: str = "default"
    out: Path = Path("output")
    print_shop: bool = False
    # Sections owned by the mail package, validated there (raw, read-only).
    mail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    smtp: Mapping[str, Any] | None = None
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def content_dir(self) -> Path:
        """The project's ``content/`` folder."""
        return self.project / "content"

    def line_of(self, dotted_key: str) -> int | None:
        """The line of ``dotted_key`` (e.g. ``smtp.port``) in publication.yaml, if present."""
        return self.lines.get(dotted_key)

    def with_overrides(self, **changes: Any) -> "Config":
        """A copy with the CLI overrides that were actually given (None means not given)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "paper" in given and given["paper"] not in PAPER_SIZES:
            raise ConfigError(self.path, None, f"paper must be one of {', '.join(PAPER_SIZES)}")
        return replace(self, **given)


@overload
def _url(f: Fields, key: str, required: Literal[True] = True) -> str: ...
@overload
def _url(f: Fields, key: str, required: bool) -> str | None: ...
def _url(f: Fields, key: str, required: bool = True) -> str | None:
    value = f.text(key, required)
    if value is not None and not value.startswith(("https://", "http://")):
        raise f.error(
            key, f"'{f._key(key)}' must be a full URL starting with https://, got {value!r}"
        )
    return value


@overload
def _email(f: Fields, key: str, required: Literal[True] = True) -> str: ...
@overload
def _email(f: Fields, key: str, required: bool) -> str | None: ...


def _email(f: Fields, key: str, required: bool = True) -> str | None:
    value = f.text(key, required)
    if value is not None and not _EMAIL.match(value):
        raise f.error(
            key, f"'{f._key(key)}' must be an email address like name@example.com, got {value!r}"
        )
    return value


_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _brand(f: Fields) -> Brand:
    b = f.mapping("brand", False)
    if b is None:
        return Brand()
    colours = b.raw("colours") or {}
    if not isinstance(colours, dict):
        raise b.error("colours", "'brand.colours' must be a mapping of token: '#RRGGBB'")
    for key, value in colours.items():
        if not isinstance(value, str) or not _COLOUR.match(value):
            raise ContentError(f.path, b.line_of(f"colours.{key}"), f"'brand.colours.{key}' must "
                               f"be a colour like '#2F6F6A' (in quotes), got {value!r}")
    fonts = b.raw("fonts") or {}
    if not isinstance(fonts, dict):
        raise b.error("fonts", "'brand.fonts' must be a mapping like the theme's 'fonts' tokens")
    brand = Brand(name=b.text("name", False), logo=b.text("logo", False),
                  colours=_freeze(colours), fonts=_freeze(fonts))
    b.done()
    return brand


def load_config(project: Path | str) -> Config:
    """Load and validate ``<project>/content/publication.yaml``."""
    project = Path(project).resolve()
    path = project / "content" / "publication.yaml"
    if not path.is_file():
        raise ConfigError(path, None, "not found; is --project pointing at a Pressroom project "
                          "(a folder holding content/publication.yaml)?")
    data, lines = load_yaml(read_text(path), path)
    f = Fields(data, lines, path)
    slug = f.text("slug")
    if not SLUG.match(slug):
        raise f.error("slug", f"'slug' must be lowercase words joined by hyphens, got {slug!r}")
    language = f.text("language")
    if not _LANG.match(language):
        raise f.error("language", f"'language' must be a language tag like en-GB, got {language!r}")
    a = f.mapping("author")
    author = Author(name=a.text("name"), role=a.text("role"), bio=a.text("bio"))
    a.done()
    c = f.mapping("contact")
    contact = Contact(email=_email(c, "email"), phone=c.text("phone", False),
                      address=c.str_list("address"))
    c.done()
    n = f.mapping("newsletter")
    newsletter = NewsletterSettings(
        sender_name=n.text("sender_name"), sender_address=_email(n, "sender_address"),
        reply_to=_email(n, "reply_to", False), signup_url=_url(n, "signup_url"),
        booking_url=_url(n, "booking_url", False),
        fallback_name=n.text("fallback_name", False, "there"))
    n.done()
    mail, smtp = f.raw("mail"), f.raw("smtp")
    for key, value in (("mail", mail), ("smtp", smtp)):
        if value is not None and not isinstance(value, dict):
            raise f.error(key, f"'{key}' must be a mapping of settings")
    config = Config(
        project=project, path=path, title=f.text("title"), subtitle=f.text("subtitle"), slug=slug,
        language=language, identifier=f.text("identifier"), date=f.date("date"), author=author,
        publisher=f.text("publisher"), rights=f.text("rights"), description=f.text("description"),
        subjects=f.str_list("subjects"), website=_url(f, "website"), contact=contact,
        newsletter=newsletter, disclaimer=f.text("disclaimer"),
        limitations=f.text("limitations", False),
        cover_illustration=f.text("cover_illustration", False),
        quick_reference=f.text("quick_reference", False), brand=_brand(f),
        paper=f.choice("paper", PAPER_SIZES, False, "a4"), theme=f.text("theme", False, "default"),
        out=project / "output", mail=_freeze(mail or {}), smtp=_freeze(smtp) if smtp else None,
        lines=MappingProxyType(dict(lines)),
    )
    f.done()
    return config
