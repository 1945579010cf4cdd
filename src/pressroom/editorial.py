"""Editorial checks run by ``pressroom check``: doses that contradict each other, and restricted
terms in promotional outputs. Each warning names ``file:line`` of every place involved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Mapping

from pressroom.errors import where
from pressroom.model import Article, Exercise, Publication, Routine, RoutineItem, dose_label

_WORDS = {"once": 1, "one": 1, "twice": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
          "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
          "fifteen": 15, "twenty": 20, "thirty": 30}
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+")
_SETS = {"set", "sets"}
_SECONDS = {"s", "sec", "secs", "second", "seconds"}
_MINUTES = {"min", "mins", "minute", "minutes"}


def per_week(frequency: str) -> float | None:
    """Sessions a week that a frequency phrase means, or None when it cannot be read.

    >>> per_week("5 days a week"), per_week("Daily"), per_week("Every other day")
    (5.0, 7.0, 3.5)
    """
    text = frequency.lower().replace("-", " ").strip()
    if re.search(r"\bevery other day\b|\balternate days\b", text):
        return 3.5
    if text in ("daily", "every day", "once a day", "each day"):
        return 7.0
    if text in ("weekly", "once a week"):
        return 1.0
    if text in ("monthly", "once a month"):
        return 12 / 52
    m = re.match(r"^(\d+|[a-z]+) (?:days?|times?) (?:a|per|each) (day|week)$", text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _WORDS.get(m.group(1))
        if n is not None:
            return float(n * 7 if m.group(2) == "day" else n)
    if text in ("twice a day", "twice daily"):
        return 14.0
    if text in ("twice a week",):
        return 2.0
    return None


def _at(ex: Exercise, key: str) -> str:
    return where(ex.path, ex.lines.get(key))


def _frequency_warnings(routine: Routine) -> Iterator[str]:
    scheduled: list[tuple[Exercise, str, int, str]] = []
    for item in routine.items:
        freq = item.frequency or "daily"
        line = item.lines.get("frequency", item.line)
        scheduled.append((item.exercise, freq, line, "schedules"))
    hint = ("change one of them or set 'frequency:' on the routine item" if routine.items
            else "change one of them or leave it out of this phase")
    for ph in routine.phases:
        for ex, line in zip(ph.exercises, ph.exercise_lines or (ph.line,) * len(ph.exercises)):
            scheduled.append((ex, ph.frequency, line, f"phase '{ph.name}' schedules"))
    for ex, freq, line, verb in scheduled:
        wanted, allowed = per_week(freq), per_week(ex.frequency)
        if wanted is not None and allowed is not None and wanted > allowed + 1e-9:
            yield (f"{where(routine.path, line)}: {verb} '{ex.title}' {freq.lower()}, more often "
                   f"than its card allows ({_at(ex, 'frequency')}: '{ex.frequency}'); {hint}")


def _note_numbers(note: str) -> Iterator[tuple[int | float, str]]:
    """(number, what it counts: 'sets' | 'hold' | 'minutes' | 'reps') for each number in a note."""
    tokens = _TOKEN.findall(note)
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if tok[0].isdigit():
            value: int | float = float(tok) if "." in tok else int(tok)
        elif low in _WORDS:
            value = _WORDS[low]
        else:
            continue
        what = "reps"
        for nxt in tokens[i + 1:i + 4]:
            n = nxt.lower()
            if nxt[0].isdigit() or n in _WORDS:
                break
            if n in _SETS or n in _SECONDS or n in _MINUTES:
                what = "sets" if n in _SETS else "hold" if n in _SECONDS else "minutes"
                break
        yield value, what


def _item_warnings(routine: Routine, item: RoutineItem) -> Iterator[str]:
    ex = item.exercise
    hold, reps, sets = item.dose
    here = where(routine.path, item.lines.get("note", item.line))
    dose = {"hold": (hold, "hold_seconds"), "reps": (reps, "reps"), "sets": (sets, "sets"),
            "minutes": (item.minutes, "minutes")}
    for value, what in _note_numbers(item.note):
        expected, key = dose[what]
        if value != expected:
            source = (where(routine.path, item.lines[key]) if key in item.lines
                      else _at(ex, key))
            yield (f"{here}: the note says {value} ({what}) but the dose is "
                   f"{dose_label(hold, reps, sets).replace(chr(160), ' ')}, {item.minutes:g} min "
                   f"({source}); take the number out of the note or set '{key}:' on the item")
    needed = hold * (reps or 1) * sets
    if item.minutes * 60 < needed:
        yield (f"{where(routine.path, item.lines.get('minutes', item.line))}: {item.minutes:g} min "
               f"for '{ex.title}' is less than its holds alone ({_product(hold, reps, sets)} "
               f"= {needed} s, {_at(ex, 'hold_seconds')}); give it more minutes or a "
               "smaller dose")


def _product(hold: int, reps: int | None, sets: int) -> str:
    """'5 s × 10 reps × 2 sets' (a timed hold without reps: '30 s × 2 sets')."""
    return " × ".join([f"{hold} s", *([f"{reps} reps"] if reps is not None else []),
                       f"{sets} sets"])


def dose_warnings(pub: Publication) -> list[str]:
    """Routines that schedule an exercise more often than its card allows, notes whose numbers
    disagree with the dose, and minutes too short for the holds × reps × sets."""
    out: list[str] = []
    for ex in pub.exercises:
        needed = ex.hold_seconds * (ex.reps or 1) * ex.sets
        if ex.minutes * 60 < needed:
            out.append(f"{_at(ex, 'minutes')}: {ex.minutes:g} min is less than the holds alone "
                       f"({_product(ex.hold_seconds, ex.reps, ex.sets)} = {needed} s); "
                       "give it more minutes or a smaller dose")
    for routine in pub.routines:
        out.extend(_frequency_warnings(routine))
        for item in routine.items:
            out.extend(_item_warnings(routine, item))
        for ph in routine.phases:
            needed = sum(e.hold_seconds * (e.reps or 1) * e.sets for e in ph.exercises)
            if ph.minutes * 60 < needed:
                out.append(f"{where(routine.path, ph.line)}: phase '{ph.name}' has {ph.minutes:g} "
                           f"min but its exercises' holds alone take {needed} s")
    return out


def _key_spans(lines: Mapping[str, int], keys: tuple[str, ...], text_lines: list[str],
               offset: int = 1) -> Iterator[int]:
    """File line numbers covered by each of ``keys`` (up to the next key or a '---' line)."""
    starts = sorted(set(lines.values()))
    expanded = [k for k in lines for key in keys if k == key or k.startswith(key + ".")]
    for key in expanded:
        start = lines[key]
        end = next((s for s in starts if s > start), len(text_lines) + offset)
        for n in range(start, end):
            if n > start and text_lines[n - offset].strip() == "---":
                break
            yield n


def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, term.split())) + r"(?!\w)", re.I)


def restricted_term_warnings(pub: Publication) -> list[str]:
    """Each use of a ``restricted_terms`` entry in a promotional output (newsletters, the site's
    landing and sign-up pages), as ``file:line``."""
    cfg = pub.config
    patterns = [(t, _term_pattern(t)) for t in cfg.restricted_terms]
    found: dict[tuple[Path, int, str], list[str]] = {}

    def scan(path: Path, numbers: Iterator[int] | range, output: str) -> None:
        text = path.read_text(encoding="utf-8").splitlines()
        for run in _runs(sorted({n for n in numbers if 1 <= n <= len(text)})):
            chunk = "\n".join(text[n - 1] for n in run)  # a term may wrap onto the next line
            for term, pat in patterns:
                for m in pat.finditer(chunk):
                    outputs = found.setdefault((path, run[0] + chunk.count("\n", 0, m.start()),
                                                term), [])
                    if output not in outputs:
                        outputs.append(output)

    def yaml_keys(keys: tuple[str, ...], output: str) -> None:
        text = cfg.path.read_text(encoding="utf-8").splitlines()
        scan(cfg.path, _key_spans(cfg.lines, keys, text), output)

    card = ("title", "area", "summary", "muscles", "steps", "cautions", "illustration")
    email_keys = ("title", "publisher", "author.name", "author.role", "disclaimer", "contact")
    for issue in pub.newsletters:
        name = f"newsletter {issue.slug}"
        scan(issue.path, range(1, len(issue.path.read_text(encoding="utf-8").splitlines()) + 1),
             name)
        yaml_keys(email_keys, name)
        for ex in issue.featured:
            scan(ex.path, _key_spans(ex.lines, card, ex.path.read_text(encoding="utf-8")
                                     .splitlines(), 1), name)
    bio = "author.short_bio" if cfg.author.short_bio else "author.bio"
    landing = "the site's landing page"
    yaml_keys(("title", "subtitle", "description", "publisher", "author.name", "author.role", bio,
               "disclaimer", "limitations"), landing)
    yaml_keys(("title", "description", "author.name"), "the site's sign-up page")
    docs: tuple[Article | Exercise | Routine, ...] = (*pub.articles, *pub.exercises,
                                                     *pub.routines)
    for doc in docs:
        keys = ("title", "summary", "area", "illustration")
        lines = doc.lines if isinstance(doc, Exercise) else _front_lines(doc.path)
        scan(doc.path, _key_spans(lines, keys, doc.path.read_text(encoding="utf-8").splitlines()),
             landing)
    return [f"{where(path, line)}: restricted term '{term}' in a promotional output "
            f"({', '.join(outputs)}); reword it there or remove it"
            for (path, line, term), outputs in sorted(found.items(), key=lambda kv: (
                str(kv[0][0]), kv[0][1], kv[0][2]))]


def _runs(numbers: list[int]) -> Iterator[list[int]]:
    """Consecutive runs in sorted line numbers: [1, 2, 5] -> [1, 2], [5]."""
    run: list[int] = []
    for n in numbers:
        if run and n != run[-1] + 1:
            yield run
            run = []
        run.append(n)
    if run:
        yield run


def _front_lines(path: Path) -> dict[str, int]:
    """Top-level front-matter keys of a content file and their lines (for articles/routines)."""
    out: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
        if line.strip() == "---":
            break
        m = re.match(r"^([A-Za-z_][\w-]*):", line)
        if m:
            out[m.group(1)] = n
    return out


def editorial_warnings(pub: Publication) -> list[str]:
    """Every editorial warning for ``pressroom check``: doses first, then restricted terms."""
    return dose_warnings(pub) + restricted_term_warnings(pub)
