"""Read every content file, validate it, and build the immutable Publication.

Everything is checked before anything is rendered; every problem names ``file:line``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, TypeVar, overload

from pressroom import markdown
from pressroom.config import SLUG, Config
from pressroom.errors import ContentError, PressroomError, where
from pressroom.fields import Fields, load_yaml, read_text
from pressroom.model import (Article, Body, CallToAction, Exercise, Image, Newsletter, Phase,
                             Publication, Routine, RoutineItem)
from pressroom.typography import smarten

log = logging.getLogger(__name__)
T = TypeVar("T")
DIFFICULTIES = ("beginner", "intermediate", "advanced")
ROUTINE_KINDS = ("daily", "programme")
EXERCISE_KINDS = ("exercise", "check")
_FACT = re.compile(r"\{study\.([A-Za-z0-9_]*)\}")


def substitute_facts(text: str, facts: Mapping[str, str], path: Path, first_line: int) -> str:
    """Replace ``{study.key}`` with the fact from publication.yaml's ``study:`` block.

    Values are single lines, so the Markdown keeps its line numbers; an unknown key is an error
    naming ``file:line``.
    """
    def one(m: re.Match[str]) -> str:
        if m.group(1) in facts:
            return facts[m.group(1)]
        line = first_line + text.count("\n", 0, m.start())
        known = ", ".join(sorted(facts)) or "none; add a 'study:' block to publication.yaml"
        raise ContentError(path, line, f"unknown fact '{m.group(0)}' (known: {known})")
    return _FACT.sub(one, text)


@overload
def _prose(value: str) -> str: ...
@overload
def _prose(value: str | None) -> str | None: ...
def _prose(value: str | None) -> str | None:
    """Reader-visible text from YAML through the one typographer (curly quotes, dashes...)."""
    return smarten(value) if value is not None else None


def _prose_list(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(smarten(v) for v in values)


def split_front_matter(path: Path) -> tuple[Fields, str, int]:
    """Split ``---`` YAML front matter from the Markdown body, keeping file line numbers.

    Returns the strict field reader, the body text and the body's first file line.
    """
    text = read_text(path)
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, 1, "must start with '---' and YAML front matter")
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        raise ContentError(path, 1, "front matter is not closed; add a '---' line after it")
    data, where = load_yaml("".join(lines[1:end]), path, first_line=2)
    return Fields(data, where, path, line=1), "".join(lines[end + 1:]), end + 2


def _slug_of(path: Path) -> str:
    slug = path.stem
    if not SLUG.match(slug):
        raise ContentError(path, None, "file name must be lowercase words joined by hyphens, "
                           f"like cheek-lift.md (got {path.name!r})")
    return slug


def _body(config: Config, path: Path, text: str, line: int, slug: str, shift: int = 0,
          book: bool = True) -> Body:
    """A content file's Markdown; ``book`` bodies (in the ebook and the handout) get block ids
    for the ebook's print page markers."""
    text = substitute_facts(text, config.study, path, line)
    return markdown.render(text, path=path, first_line=line, content_dir=config.content_dir,
                           id_prefix=slug, heading_shift=shift, block_ids=book)


def _illustration(config: Config, f: Fields, key: str) -> Image:
    m = f.mapping(key)
    src, alt = m.text("src"), m.text("alt")
    m.done()
    path = markdown.resolve_image(src, f.path, m.line_of("src"), config.content_dir)
    return Image(src=src, path=path, alt=smarten(alt))


def load_article(config: Config, path: Path) -> Article:
    """One article: title, summary, date, order + Markdown body."""
    slug = _slug_of(path)
    f, text, line = split_front_matter(path)
    article = Article(slug=slug, path=path, title=_prose(f.text("title")),
                      summary=_prose(f.text("summary")),
                      date=f.date("date"), order=f.integer("order", False, 100),
                      body=_body(config, path, text, line, slug, shift=0))
    f.done()
    return article


def load_exercise(config: Config, path: Path) -> Exercise:
    """One structured exercise guide."""
    slug = _slug_of(path)
    f, text, line = split_front_matter(path)
    hold = f.integer("hold_seconds", False, 0, minimum=0)
    # A timed hold ("hold 30 s, 3 sets") needs no repetitions; anything else does.
    reps = f.integer("reps", not hold, None, minimum=1)
    ex = Exercise(
        slug=slug, path=path, title=_prose(f.text("title")), area=_prose(f.text("area")),
        muscles=_prose_list(f.str_list("muscles", False, 0)),
        summary=_prose(f.text("summary", max_len=160)),
        hold_seconds=hold, reps=reps,
        sets=f.integer("sets", minimum=1), minutes=f.number("minutes", minimum=0.25),
        frequency=_prose(f.text("frequency")), difficulty=f.choice("difficulty", DIFFICULTIES),
        order=f.integer("order", False, 100), illustration=_illustration(config, f, "illustration"),
        steps=_prose_list(f.str_list("steps", min_items=2)),
        tips=_prose_list(f.str_list("tips", False, 0)),
        mistakes=_prose_list(f.str_list("mistakes", False, 0)),
        cautions=_prose_list(f.str_list("cautions", False, 0)),
        body=_body(config, path, text, line, slug, shift=1),
        kind=f.choice("kind", EXERCISE_KINDS, False, "exercise"),
        lines=MappingProxyType(dict(f.lines)))
    f.done()
    return ex


class _BrokenReference(Exception):
    """A reference to an exercise whose own file has an error (already reported)."""


def _exercise_ref(f: Fields, key: str, slug: str, exercises: dict[str, Exercise],
                  line: int | None = None) -> Exercise:
    if slug not in exercises and (f.path.parent.parent / "exercises" / f"{slug}.md").is_file():
        raise _BrokenReference(slug)
    if slug not in exercises:
        known = ", ".join(sorted(exercises))
        raise ContentError(f.path, line or f.line_of(key),
                           f"unknown exercise '{slug}' (known: {known})")
    return exercises[slug]


def load_routine(config: Config, path: Path, exercises: dict[str, Exercise]) -> Routine:
    """A daily routine (items) or a programme (phases); exercise slugs must exist."""
    slug = _slug_of(path)
    f, text, line = split_front_matter(path)
    title, kind = _prose(f.text("title")), f.choice("kind", ROUTINE_KINDS)
    summary = _prose(f.text("summary"))
    items: list[RoutineItem] = []
    phases: list[Phase] = []
    if kind == "daily":
        items = [_routine_item(item, exercises) for item in f.mappings("items")]
    else:
        for ph in f.mappings("phases"):
            slugs = ph.str_list("exercises")
            at = tuple(ph.lines.get(f"{ph.prefix}.exercises.{i}", ph.line)
                       for i in range(len(slugs)))
            refs = tuple(_exercise_ref(ph, "exercises", s, exercises, at[i])
                         for i, s in enumerate(slugs))
            start, end = ph.integer("start_week", minimum=1), ph.integer("end_week", minimum=1)
            if end < start:
                raise ph.error("end_week", f"'end_week' ({end}) is before 'start_week' ({start})")
            phases.append(Phase(_prose(ph.text("name")), start, end, _prose(ph.text("frequency")),
                                ph.number("minutes", minimum=1), refs, _prose(ph.text("note")),
                                line=ph.line, exercise_lines=at))
            ph.done()
    f.done()
    return Routine(slug=slug, path=path, title=title, kind=kind, summary=summary,
                   items=tuple(items), phases=tuple(phases),
                   body=_body(config, path, text, line, slug, shift=1))


def _routine_item(item: Fields, exercises: dict[str, Exercise]) -> RoutineItem:
    """One daily-routine entry: the exercise, its minutes, an optional note and explicit dose
    overrides (``sets: 1``) that replace the card's values in this routine only."""
    ex = _exercise_ref(item, "exercise", item.text("exercise"), exercises)
    out = RoutineItem(ex, item.number("minutes", minimum=0.25),
                      _prose(item.text("note", False, "", max_len=100)),
                      hold_seconds=item.integer("hold_seconds", False, minimum=0),
                      reps=item.integer("reps", False, minimum=1),
                      sets=item.integer("sets", False, minimum=1),
                      frequency=_prose(item.text("frequency", False)), line=item.line,
                      lines=MappingProxyType({k[len(item.prefix) + 1:]: v
                                              for k, v in item.lines.items()
                                              if k.startswith(item.prefix + ".")}))
    item.done()
    return out


def load_newsletter(config: Config, path: Path, exercises: dict[str, Exercise]) -> Newsletter:
    """One newsletter issue; featured slugs must exist."""
    slug = _slug_of(path)
    if slug == "index":
        raise ContentError(path, None, "'index' is reserved for the newsletter archive page; "
                           "rename the file, e.g. 04-spring.md")
    f, text, line = split_front_matter(path)
    subject = _prose(f.text("subject", max_len=150))
    preheader = _prose(f.text("preheader", max_len=200))
    featured = tuple(_exercise_ref(f, "featured", s, exercises, f.lines.get(f"featured.{i}"))
                     for i, s in enumerate(f.str_list("featured", False, 0)))
    c = f.mapping("cta")
    cta = CallToAction(_prose(c.text("label")), c.text("url"))
    if not cta.url.startswith(("https://", "http://", "mailto:")):
        raise c.error("url", f"'cta.url' must be a full https:// URL, got {cta.url!r}")
    c.done()
    issue = Newsletter(
        slug=slug,
        path=path,
        subject=subject,
        preheader=preheader,
        date=f.date("date"),
        number=f.integer("number", minimum=1),
        featured=featured,
        cta=cta,
        body=_body(config, path, text, line, f"issue-{slug}", shift=0, book=False),
    )
    f.done()
    return issue


def _load_all(files: list[Path], load: Callable[[Path], T], errors: list[str]) -> list[T]:
    out = []
    for path in files:
        try:
            out.append(load(path))
        except ContentError as exc:
            errors.append(exc.message)
        except _BrokenReference:
            pass  # the exercise's own error is reported; don't cascade
    return out


def _check_unique(items, key: Callable, field: str, what: str, errors: list[str]) -> None:
    seen: dict = {}
    for item in items:
        k = key(item)
        if k in seen:
            first = seen[k]
            errors.append(f"{where(item.path, _field_line(item.path, field))}: duplicate {what} "
                          f"{k!r} (also used at "
                          f"{where(first.path, _field_line(first.path, field))})"
                          "; make it unique")
        else:
            seen[k] = item


def _field_line(path: Path, field: str) -> int | None:
    """The line of a top-level front-matter field (for messages about a loaded document)."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.startswith(f"{field}:"):
            return number
    return None


def _check_quick_reference(config: Config, routines: list[Routine], errors: list[str]) -> None:
    """With several daily routines, ``quick_reference`` must say which one the quick
    reference shows; when given, it must name a daily routine."""
    daily = sorted(r.slug for r in routines if r.kind == "daily")
    chosen = config.quick_reference
    line = f"{where(config.path)}:{config.line_of('quick_reference') or 1}"
    if chosen is None and len(daily) > 1:
        errors.append(f"{where(config.path)}: {len(daily)} daily routines ({', '.join(daily)}); "
                      "add 'quick_reference: <slug>' to say which one the quick reference shows")
    elif chosen is not None and chosen not in daily:
        known = ", ".join(daily) or "none"
        errors.append(f"{line}: 'quick_reference' must name a daily routine in content/routines/, "
                      f"got {chosen!r} (daily routines: {known})")


def load_publication(config: Config) -> Publication:
    """Load, validate and cross-check every content file; raise one error listing all problems."""
    root = config.content_dir
    errors: list[str] = []
    markdown.clear_caches()

    def md_files(folder: str) -> list[Path]:
        return sorted((root / folder).glob("*.md")) if (root / folder).is_dir() else []

    exercises = _load_all(md_files("exercises"), lambda p: load_exercise(config, p), errors)
    by_slug = {e.slug: e for e in exercises}
    articles = _load_all(md_files("articles"), lambda p: load_article(config, p), errors)
    routines = _load_all(md_files("routines"), lambda p: load_routine(config, p, by_slug), errors)
    newsletters = _load_all(md_files("newsletters"),
                            lambda p: load_newsletter(config, p, by_slug), errors)
    _check_unique(exercises, lambda e: e.title, "title", "exercise title", errors)
    _check_unique(newsletters, lambda n: n.number, "number", "newsletter number", errors)
    _check_quick_reference(config, routines, errors)
    if not articles and not errors:
        errors.append(f"{root / 'articles'}: no articles found; add at least one .md file")

    bio, disclaimer, limitations, short_bio = _publication_bodies(config, errors)
    cover = _cover(config, exercises, errors)
    if errors:
        raise PressroomError("\n".join(errors) if len(errors) == 1 else
                             f"{len(errors)} problems in content:\n" + "\n".join(errors))
    assert cover is not None  # no cover without an error is itself an error above
    log.info("loaded %d article(s), %d exercise(s), %d routine(s), %d newsletter(s)",
             len(articles), len(exercises), len(routines), len(newsletters))
    return Publication(
        config=config,
        articles=tuple(sorted(articles, key=lambda a: (a.order, a.slug))),
        exercises=tuple(sorted(exercises, key=lambda e: (e.order, e.slug))),
        routines=tuple(sorted(routines, key=lambda r: (ROUTINE_KINDS.index(r.kind), r.slug))),
        newsletters=tuple(sorted(newsletters, key=lambda n: (n.number, n.slug))),
        author_bio=bio, disclaimer=disclaimer, limitations=limitations, cover_image=cover,
        author_short_bio=short_bio)


def _publication_bodies(config: Config, errors: list[str]
                        ) -> tuple[Body, Body, Body | None, Body | None]:
    """publication.yaml's Markdown texts: the bio, the disclaimer, the limitations and the short
    bio (the last two when given); problems are added to ``errors``."""
    root = config.content_dir

    def pub_body(key: str, text: str) -> Body:
        try:
            text = substitute_facts(text, config.study, config.path, config.line_of(key) or 1)
            return markdown.render(text, path=config.path, first_line=config.line_of(key) or 1,
                                   content_dir=root, id_prefix=key)
        except ContentError as exc:
            errors.append(exc.message)
            return markdown.render(
                "", path=config.path, first_line=1, content_dir=root, id_prefix=key
            )

    limitations = (
        pub_body("limitations", config.limitations) if config.limitations else None
    )
    short_bio = (pub_body("author.short_bio", config.author.short_bio)
                 if config.author.short_bio else None)
    return (pub_body("author.bio", config.author.bio), pub_body("disclaimer", config.disclaimer),
            limitations, short_bio)


def _cover(config: Config, exercises: list[Exercise], errors: list[str]) -> Image | None:
    """The cover picture: ``cover_illustration``, else the first exercise's illustration."""
    cover = exercises[0].illustration if exercises else None
    if config.cover_illustration:
        try:
            src = config.cover_illustration
            cover = Image(src, markdown.resolve_image(src, config.path, config.line_of(
                "cover_illustration"), config.content_dir), f"Illustration for {config.title}")
        except ContentError as exc:
            errors.append(exc.message)
    if cover is None and not errors:
        errors.append(f"{config.path}: no exercises and no 'cover_illustration'; add one of them")
    return cover
