"""Markdown -> readable plain text (for the email's text part): headings, paragraphs, lists and
definition lists kept, links written out in full, wrapped at 78 columns. The tokens come from
the same parser as the HTML (pressroom.markdown), so attributes like ``{.button}`` never leak."""

from __future__ import annotations

import textwrap

from pressroom.markdown import parse


WIDTH = 78


def wrap(text: str, indent: str = "", first: str | None = None) -> str:
    """Wrap at 78 columns without breaking URLs or long words."""
    return textwrap.fill(text, WIDTH, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def heading(text: str, level: int = 2) -> str:
    """A plain-text heading, wrapped and underlined with = (level 1) or - (deeper)."""
    lines = textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
    rule = ("=" if level == 1 else "-") * min(max(len(line) for line in lines), WIDTH)
    return "\n".join(lines) + "\n" + rule


def _inline(token) -> str:
    out, links = [], []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "link_open":
            links.append(child.attrGet("href"))
        elif child.type == "link_close":
            href = links.pop()
            out.append(f" ({href})" if href and not href.startswith("#") else "")
        elif child.type == "image":
            alt = "".join(c.content for c in child.children or [])
            out.append(f"[Illustration: {alt}]")
        elif child.type == "footnote_ref":
            out.append(f"[{child.meta['id'] + 1}]")
    return "".join(out)


def markdown_to_text(markdown: str) -> str:
    """Render Markdown as wrapped plain text."""
    blocks: list[tuple[str, str]] = []
    lists: list[list] = []  # [ordered?, counter]
    pending = "p"
    footnote = 0
    quote = 0  # blockquote depth
    row: list[str] | None = None
    for tok in parse(markdown):
        if tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            blocks.append(("li", wrap(" | ".join(row or []), "  ")))
            row = None
        elif tok.type == "inline" and row is not None:
            row.append(_inline(tok))
        elif tok.type in ("blockquote_open", "blockquote_close"):
            quote += tok.nesting
        elif tok.type == "heading_open":
            pending = "h"
        elif tok.type in ("dt_open", "dd_open"):
            pending = tok.type[:2]
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([tok.type.startswith("ordered"), 0])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            lists[-1][1] += 1
        elif tok.type == "footnote_block_open":
            blocks.append(("h", "Notes"))
        elif tok.type == "footnote_open":
            footnote = tok.meta["id"] + 1
        elif tok.type.startswith("container_") and tok.nesting == 1:
            title = tok.info.strip().partition(" ")[2]
            if title:
                blocks.append(("h", title))
        elif tok.type == "inline":
            text = _inline(tok)
            if pending in ("h", "dt"):
                blocks.append((pending, text if pending == "h" else wrap(text)))
                pending = "p"
            elif pending == "dd":
                blocks.append(("dd", wrap(text, "    ")))
                pending = "p"
            elif lists:
                ordered, n = lists[-1]
                bullet = f"{n}. " if ordered else "- "
                indent = "  " * (len(lists) - 1)
                blocks.append(("li", wrap(text, indent + " " * len(bullet), indent + bullet)))
            elif footnote:
                blocks.append(("p", wrap(text, "    ", f"[{footnote}] ")))
                footnote = 0
            elif quote:
                blocks.append(("p", wrap(text, "> " * quote)))
            else:
                blocks.append(("p", wrap(text)))
    return join_blocks(blocks)


def join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Join (kind, text) blocks: list items one per line, everything else by a blank line."""
    out = ""
    prev = None
    for kind, text in blocks:
        if kind == "h":
            text = heading(text)
        if out:
            tight = (kind == "li" and prev == "li") or (kind == "dd" and prev in ("dt", "dd"))
            out += "\n" if tight else "\n\n"
        out += text
        prev = kind
    return out + "\n" if out else ""
