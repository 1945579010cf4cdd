"""Read ``content/publication.yaml`` (plus CLI overrides) into one frozen Config."""

from __future__ import annotations

import copyreg
import datetime as _dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping, overload

from pressroom.errors import ConfigError, ContentError
from pressroom.fields import Fields, load_yaml, read_text
from pressroom.typography import smarten

PAPER_SIZES = ("a4", "letter")
# A slug: lowercase words joined by hyphens (the publication's and every content file's).
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FACT_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
# UK prescription-only-medicine names that must not appear in promotional outputs (CAP Code 12.12).
DEFAULT_RESTRICTED_TERMS = ("Botox", "Dysport", "Bocouture", "Azzalure", "Xeomin",
                            "botulinum toxin")


@dataclass(frozen=True)
class Author:
    """The publication's author."""

    name: str
    role: str
    bio: str  # Markdown
    short_bio: str | None = None  # Markdown; the promotional bio for the landing page


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
class EbookSettings:
    """``epub:``: the print page list, and who declares the ebook's accessibility conformance."""

    page_list: bool = True
    certified_by: str | None = None  # None: the brand name, else the publisher
    certifier_credential: str | None = None


@dataclass(frozen=True)
class NewsletterSettings:
    """Sender identity and the links every newsletter carries."""

    sender_name: str
    sender_address: str
    reply_to: str | None
    signup_url: str
    booking_url: str | None
    fallback_name: str


def _frozen_mapping(items: dict) -> MappingProxyType:
    return MappingProxyType(items)


def _pickle_frozen(proxy: MappingProxyType) -> tuple[Callable[[dict], MappingProxyType], tuple]:
    return _frozen_mapping, (dict(proxy),)


# The frozen model pickles (a parallel build hands it to its PDF worker process that way).
copyreg.pickle(MappingProxyType, _pickle_frozen)


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
    # The cited study's facts, stated once; Markdown uses them as {study.key}.
    study: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    restricted_terms: tuple[str, ...] = DEFAULT_RESTRICTED_TERMS
    paper: str = "a4"
    theme: str = "default"
    out: Path = Path("output")
    print_shop: bool = False
    epub: EbookSettings = field(default_factory=EbookSettings)
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


def _study(f: Fields) -> Mapping[str, str]:
    """``study:``: one level of ``key: value`` facts (text or numbers, one line each)."""
    s = f.mapping("study", False)
    if s is None:
        return MappingProxyType({})
    facts: dict[str, str] = {}
    for key in list(s.data):
        value = s.raw(str(key))
        if not _FACT_KEY.match(str(key)):
            raise s.error(str(key), f"'study.{key}' must be a lowercase name like 'completed'")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise s.error(str(key), f"'study.{key}' must be text or a number, got {value!r}")
        text = str(value).strip()
        if not text or "\n" in text:
            raise s.error(str(key), f"'study.{key}' must be one non-empty line")
        facts[str(key)] = text
    s.done()
    return MappingProxyType(facts)


def _ebook(f: Fields) -> EbookSettings:
    e = f.mapping("epub", False)
    if e is None:
        return EbookSettings()
    settings = EbookSettings(page_list=e.boolean("page_list", False, True),
                             certified_by=e.text("certified_by", False),
                             certifier_credential=e.text("certifier_credential", False))
    e.done()
    return settings


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
    author = Author(name=smarten(a.text("name")), role=smarten(a.text("role")),
                    bio=a.text("bio"), short_bio=a.text("short_bio", False))
    a.done()
    c = f.mapping("contact")
    contact = Contact(email=_email(c, "email"), phone=c.text("phone", False),
                      address=tuple(smarten(line) for line in c.str_list("address")))
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
    terms = (f.str_list("restricted_terms", False, 0)
             if f.raw("restricted_terms") is not None else None)
    config = Config(
        project=project, path=path, title=smarten(f.text("title")),
        subtitle=smarten(f.text("subtitle")), slug=slug,
        language=language, identifier=f.text("identifier"), date=f.date("date"), author=author,
        publisher=smarten(f.text("publisher")), rights=smarten(f.text("rights")),
        description=smarten(f.text("description")),
        subjects=tuple(smarten(s) for s in f.str_list("subjects")),
        study=_study(f),
        restricted_terms=DEFAULT_RESTRICTED_TERMS if terms is None else terms,
        website=_url(f, "website"), contact=contact,
        newsletter=newsletter, disclaimer=f.text("disclaimer"),
        limitations=f.text("limitations", False),
        cover_illustration=f.text("cover_illustration", False),
        quick_reference=f.text("quick_reference", False), brand=_brand(f), epub=_ebook(f),
        paper=f.choice("paper", PAPER_SIZES, False, "a4"), theme=f.text("theme", False, "default"),
        out=project / "output", mail=_freeze(mail or {}), smtp=_freeze(smtp) if smtp else None,
        lines=MappingProxyType(dict(lines)),
    )
    f.done()
    return config
