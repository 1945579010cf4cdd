"""The one typographer: curly quotes, dashes, ellipsis and number–unit spacing.

``smarten`` is applied at load time to every reader-visible string that comes from YAML (titles,
steps, notes, subjects...), so every format gets the same text. Markdown bodies get the quotes,
dashes and ellipsis from markdown-it's own typographer and only the number–unit spacing from
``units_rule``, so nothing is processed twice. URLs, slugs, email addresses and code are never
passed through here: the loader calls ``smarten`` only on prose fields.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config.py imports this module: loading a project needs no markdown-it
    from markdown_it.rules_core import StateCore

NBSP = "\u00a0"
# Units that must not be separated from their number at a line break: "5 s", "10 min".
_UNITS = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?) (s|sec|min|mins|h|hr|hrs|mm|cm|m|ml|kg|g|%)"
                    r"(?![\w])")
_DOUBLE_OPEN = re.compile(r'(^|[\s(\[{\u2014\u2013-])"')
_SINGLE_OPEN = re.compile(r"(^|[\s(\[{\u2014\u2013\u201c-])'")


def nbsp_units(text: str) -> str:
    """Join a number to its unit with a no-break space: '5 s' -> '5\u00a0s'."""
    return _UNITS.sub(lambda m: f"{m.group(1)}{NBSP}{m.group(2)}", text)


def smarten(text: str) -> str:
    """Typographer for plain prose: ’ “ ” ‘ — – … and no-break number–unit spaces.

    >>> smarten("Bell's palsy -- \\"gently\\"...")
    'Bell’s palsy – “gently”…'
    """
    if not text:
        return text
    text = text.replace("...", "\u2026")
    text = text.replace("---", "\u2014").replace("--", "\u2013")
    text = text.replace(" - ", " \u2013 ")
    text = _DOUBLE_OPEN.sub(lambda m: m.group(1) + "\u201c", text).replace('"', "\u201d")
    text = _SINGLE_OPEN.sub(lambda m: m.group(1) + "\u2018", text).replace("'", "\u2019")
    return nbsp_units(text)


def units_rule(state: StateCore) -> None:
    """markdown-it core rule: no-break number–unit spaces in text (never in code or URLs)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        for tok in block.children:
            if tok.type == "text":
                tok.content = nbsp_units(tok.content)
