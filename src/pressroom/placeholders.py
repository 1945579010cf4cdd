"""Values left from `pressroom init` or obviously fake, found before they reach readers:
the scaffold's "Replace this text", example.com/.org/.net addresses and sites, "Your Practice"
and "Your Name", and phone numbers that are all zeros after the area code."""

from __future__ import annotations

import re
from pathlib import Path

from pressroom.errors import where
from pressroom.model import Publication

SCAFFOLD_MARK = "Replace this text"
_FAKE_DOMAIN = re.compile(r"(?<![\w.-])(?:[\w-]+\.)*example\.(?:com|org|net)\b", re.IGNORECASE)
_FAKE_NAMES = ("Your Practice", "Your Name")


def fake_phone(phone: str) -> bool:
    """True for a number whose digits after the area code are all zeros, like
    '+44 1622 000000' or '020 0000 0000'."""
    groups = re.findall(r"\d+", phone)
    rest = groups[2:] if phone.strip().startswith("+") else groups[1:]
    return bool(rest) and all(set(group) == {"0"} for group in rest)


def _line_problems(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue  # a YAML comment shows nothing to readers
        if SCAFFOLD_MARK in line:
            found.append((number, f"scaffold text '{SCAFFOLD_MARK}' left; write your own"))
        for match in _FAKE_DOMAIN.finditer(line):
            found.append((number, (f"'{match.group(0)}' is a placeholder domain; use your "
                                  "real address")))
        for name in _FAKE_NAMES:
            if name in line:
                found.append((number, f"'{name}' is a placeholder; give the real name"))
    return found


def placeholder_warnings(pub: Publication) -> list[str]:
    """Every placeholder in publication.yaml and the content files, as ``file:line: ...``.

    Example::

        for message in placeholder_warnings(load_publication(config)):
            print(message)
    """
    cfg = pub.config
    files: list[Path] = [cfg.path]
    for group in (pub.articles, pub.exercises, pub.routines, pub.newsletters):
        files.extend(item.path for item in group)
    warnings = [f"{where(path, line)}: {problem}" for path in files
                for line, problem in _line_problems(path.read_text(encoding="utf-8"))]
    if cfg.contact.phone and fake_phone(cfg.contact.phone):
        warnings.append(f"{where(cfg.path, cfg.line_of('contact.phone'))}: phone number "
                        f"'{cfg.contact.phone}' looks made up (all zeros); give the real one "
                        "or remove it")
    return warnings
