"""The immutable document model every renderer reads. No I/O here."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from pressroom.config import Config


@dataclass(frozen=True)
class Image:
    """An illustration: SVG source inside the project, with alt text."""

    src: str  # relative to content/, e.g. images/exercises/cheek-lift.svg
    path: Path  # resolved file
    alt: str
    caption: str | None = None

    @property
    def stem(self) -> str:
        """A file-name-safe name for derived copies (PNG, EPUB item)."""
        return self.src.rsplit(".", 1)[0].replace("/", "-")


@dataclass(frozen=True)
class Heading:
    """A heading inside rendered Markdown (for tables of contents)."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Body:
    """Markdown rendered once to safe HTML, with what the formats need to know about it."""

    markdown: str
    html: str  # HTML5 for the PDF, email and site
    xhtml: str  # the same with EPUB 3 semantics (epub:type on footnotes)
    headings: tuple[Heading, ...]
    images: tuple[Image, ...]
    has_footnotes: bool


@dataclass(frozen=True)
class Article:
    """A long-form article."""

    slug: str
    path: Path
    title: str
    summary: str
    date: _dt.date
    order: int
    body: Body


def dose_label(hold_seconds: int, reps: int | None, sets: int) -> str:
    """Hold / reps / sets in one short line, e.g. 'Hold 5 s · 10 reps · 2 sets' (a timed hold
    may have no reps: 'Hold 30 s · 2 sets')."""
    parts = []
    if hold_seconds:
        parts.append(f"Hold {hold_seconds}\u00a0s")
    if reps is not None:
        parts.append(f"{reps} rep{'s' if reps != 1 else ''}")
    parts.append(f"{sets} set{'s' if sets != 1 else ''}")
    return " · ".join(parts)


def _no_lines() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Exercise:
    """One structured exercise guide."""

    slug: str
    path: Path
    title: str
    area: str
    muscles: tuple[str, ...]
    summary: str
    hold_seconds: int  # 0: no hold
    reps: int | None  # None: a timed hold, no repetitions
    sets: int
    minutes: float
    frequency: str
    difficulty: str
    order: int
    illustration: Image
    steps: tuple[str, ...]
    tips: tuple[str, ...]
    mistakes: tuple[str, ...]
    cautions: tuple[str, ...]
    body: Body
    kind: str = "exercise"  # "exercise" | "check" (a self-check is not counted as an exercise)
    lines: Mapping[str, int] = field(default_factory=_no_lines)  # front-matter key -> file line

    @property
    def timing(self) -> str:
        """Hold / reps / sets in one short line, e.g. 'Hold 5 s · 10 reps · 2 sets'."""
        return dose_label(self.hold_seconds, self.reps, self.sets)

    @property
    def minutes_label(self) -> str:
        """'2 min' or '1.5 min'."""
        m = self.minutes
        return f"{int(m) if float(m).is_integer() else m}\u00a0min"


@dataclass(frozen=True)
class RoutineItem:
    """One exercise in the daily routine, with its explicit dose overrides (None: the card's)."""

    exercise: Exercise
    minutes: float
    note: str
    hold_seconds: int | None = None
    reps: int | None = None
    sets: int | None = None
    frequency: str | None = None
    line: int = 0  # file line of the item in the routine's front matter
    lines: Mapping[str, int] = field(default_factory=_no_lines)  # item key -> file line

    @property
    def dose(self) -> tuple[int, int | None, int]:
        """(hold seconds, reps, sets) after this routine's overrides."""
        ex = self.exercise
        return (ex.hold_seconds if self.hold_seconds is None else self.hold_seconds,
                ex.reps if self.reps is None else self.reps,
                ex.sets if self.sets is None else self.sets)

    @property
    def timing(self) -> str:
        """The dose printed from data, e.g. 'Hold 5 s · 10 reps · 1 set'."""
        return dose_label(*self.dose)

    @property
    def minutes_label(self) -> str:
        """'2 min' or '1.5 min'."""
        m = self.minutes
        return f"{int(m) if float(m).is_integer() else m}\u00a0min"


@dataclass(frozen=True)
class Phase:
    """A block of weeks in a programme."""

    name: str
    start_week: int
    end_week: int
    frequency: str
    minutes: float
    exercises: tuple[Exercise, ...]
    note: str
    line: int = 0  # file line of the phase in the routine's front matter
    exercise_lines: tuple[int, ...] = ()  # file line of each listed exercise

    @property
    def weeks(self) -> range:
        """The week numbers this phase covers."""
        return range(self.start_week, self.end_week + 1)


@dataclass(frozen=True)
class Routine:
    """A daily routine (items) or a multi-week programme (phases)."""

    slug: str
    path: Path
    title: str
    kind: str  # "daily" | "programme"
    summary: str
    items: tuple[RoutineItem, ...]
    phases: tuple[Phase, ...]
    body: Body

    @property
    def total_minutes(self) -> float:
        """Sum of the items' minutes (daily routines)."""
        return sum(i.minutes for i in self.items)

    @property
    def total_weeks(self) -> int:
        """Last week of the programme."""
        return max((p.end_week for p in self.phases), default=0)


@dataclass(frozen=True)
class CallToAction:
    """A newsletter's button."""

    label: str
    url: str


@dataclass(frozen=True)
class Newsletter:
    """One newsletter issue."""

    slug: str
    path: Path
    subject: str
    preheader: str
    date: _dt.date
    number: int
    featured: tuple[Exercise, ...]
    cta: CallToAction
    body: Body


@dataclass(frozen=True)
class Publication:
    """Everything loaded and validated: the single input of every renderer."""

    config: Config
    articles: tuple[Article, ...]
    exercises: tuple[Exercise, ...]
    routines: tuple[Routine, ...]
    newsletters: tuple[Newsletter, ...]
    author_bio: Body
    disclaimer: Body
    limitations: Body | None
    cover_image: Image
    author_short_bio: Body | None = None  # the promotional bio (landing page), if given

    @property
    def exercise_count(self) -> int:
        """How many of the guides are exercises (self-checks are not counted)."""
        return sum(1 for ex in self.exercises if ex.kind == "exercise")

    def exercise(self, slug: str) -> Exercise:
        """Look an exercise up by slug."""
        for ex in self.exercises:
            if ex.slug == slug:
                return ex
        raise KeyError(slug)

    @property
    def daily(self) -> Routine | None:
        """The daily routine the quick reference shows (publication.yaml's
        ``quick_reference``, else the only one), if there is one."""
        chosen = self.config.quick_reference
        return next((r for r in self.routines if r.kind == "daily"
                     and (chosen is None or r.slug == chosen)), None)

    @property
    def programme(self) -> Routine | None:
        """The first multi-week programme (by file name), if there is one."""
        return next((r for r in self.routines if r.kind == "programme"), None)

    @property
    def images(self) -> tuple[Image, ...]:
        """Every image used anywhere, once each, in a stable order."""
        seen: dict[str, Image] = {}
        bodies = [a.body for a in self.articles] + [e.body for e in self.exercises]
        for body in bodies:
            for img in body.images:
                seen.setdefault(img.src, img)
        for ex in self.exercises:
            seen.setdefault(ex.illustration.src, ex.illustration)
        return tuple(seen[k] for k in sorted(seen))
