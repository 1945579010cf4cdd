"""The one configured Markdown renderer: CommonMark + tables, footnotes, definition lists,
attributes, callouts and smart typography. Raw HTML is never passed through."""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from mdit_py_plugins.attrs import attrs_plugin
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin

from pressroom.errors import ContentError
from pressroom.images import problem as image_problem
from pressroom.model import Body, Heading, Image
from pressroom.typography import units_rule

CALLOUTS = ("takeaways", "note", "caution")
IMAGE_TYPES = (".svg", ".png", ".jpg", ".jpeg")
LINK_SCHEMES = ("http", "https", "mailto", "tel")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def slugify(text: str) -> str:
    """ASCII, lowercase, hyphen-separated: 'The Science Behind…' -> 'the-science-behind'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _callout_render(name: str):
    def render(self, tokens, idx, options, env):
        tok = tokens[idx]
        if tok.nesting == 1:
            title = tok.info.strip()[len(name):].strip()
            head = f'<p class="callout-title">{html.escape(title)}</p>\n' if title else ""
            label = f' aria-label="{html.escape(title)}"' if title else ""
            return (f'<aside class="callout callout-{name}"{_id_attr(tok)} role="note"{label}>\n'
                    f'{head}')
        return "</aside>\n"
    return render


def _build(flavour: str) -> MarkdownIt:
    md = (MarkdownIt("commonmark", {"typographer": True, "xhtmlOut": True, "html": False})
          .enable(["table", "replacements", "smartquotes"])
          .use(footnote_plugin).use(deflist_plugin).use(attrs_plugin))
    md.core.ruler.push("units", units_rule)  # after markdown-it's own quotes and dashes
    for name in CALLOUTS:
        md.use(container_plugin, name, render=_callout_render(name))
    for name, fn in {**_FIGURE_RULES, **_footnote_rules(flavour)}.items():
        md.add_render_rule(name, fn)
    # Let every link through the parser so that render() can reject a bad scheme at its line;
    # markdown-it's own check would quietly print such a link as literal text instead.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def _render_image(self, tokens, idx, options, env):
    tok = tokens[idx]
    alt = html.escape(self.renderInlineAsText(tok.children or [], options, env))
    src = html.escape(tok.attrGet("src") or "")
    return f'<img src="{src}" alt="{alt}" />'


def _id_attr(tok: Token) -> str:
    anchor = tok.attrGet("id")
    return f' id="{html.escape(str(anchor))}"' if anchor else ""


def _paragraph_open(self, tokens, idx, options, env):
    if _lone_image(tokens[idx + 1]):
        return f'<figure class="figure"{_id_attr(tokens[idx])}>\n'
    return self.renderToken(tokens, idx, options, env)


def _paragraph_close(self, tokens, idx, options, env):
    inline = tokens[idx - 1]
    if _lone_image(inline):
        title = inline.children[0].attrGet("title")
        cap = f"\n<figcaption>{html.escape(title)}</figcaption>" if title else ""
        return f"{cap}\n</figure>\n"
    return self.renderToken(tokens, idx, options, env)


def _heading_open(self, tokens, idx, options, env):
    tok = tokens[idx]
    anchor = tok.attrGet("id")
    return f'<{tok.tag} id="{anchor}">' if anchor else f"<{tok.tag}>"


# A lone image becomes a figure (its title the caption); headings keep only their id.
_FIGURE_RULES = {"image": _render_image, "paragraph_open": _paragraph_open,
                 "paragraph_close": _paragraph_close, "heading_open": _heading_open}


def _footnote_rules(flavour: str) -> dict:
    """Footnotes as DPUB-ARIA notes; the EPUB flavour adds epub:type and uses <aside>."""
    epub = flavour == "epub"

    def anchor(self, tokens, idx, options, env):
        n = tokens[idx].meta["id"] + 1
        return f' <a href="#{env["prefix"]}fnref{n}" class="footnote-backref">Back to text</a>'

    def ref(self, tokens, idx, options, env):
        n, p = tokens[idx].meta["id"] + 1, env["prefix"]
        extra = ' epub:type="noteref"' if epub else ""
        return (f'<sup class="footnote-ref"><a href="#{p}fn{n}" id="{p}fnref{n}" '
                f'role="doc-noteref"{extra}>{n}</a></sup>')

    def block_open(self, tokens, idx, options, env):
        return (f'<section class="footnotes"{_id_attr(tokens[idx])} role="doc-endnotes" '
                'aria-label="Notes">\n'
                '<h2 class="footnotes-title">Notes</h2>\n')

    def note_open(self, tokens, idx, options, env):
        n, p = tokens[idx].meta["id"] + 1, env["prefix"]
        if epub:
            return (f'<aside epub:type="footnote" role="doc-footnote" id="{p}fn{n}" '
                    f'class="footnote"><span class="footnote-number">{n}.</span> ')
        return (f'<div class="footnote" id="{p}fn{n}" role="doc-footnote">'
                f'<span class="footnote-number">{n}.</span> ')

    return {"footnote_anchor": anchor, "footnote_ref": ref, "footnote_block_open": block_open,
            "footnote_block_close": lambda self, tokens, idx, options, env: "</section>\n",
            "footnote_open": note_open,
            "footnote_close": lambda self, tokens, idx, options, env: (
                "</aside>\n" if epub else "</div>\n")}


def _lone_image(inline: Token) -> bool:
    kids = [c for c in (inline.children or []) if not (c.type == "text" and not c.content.strip())]
    return inline.type == "inline" and len(kids) == 1 and kids[0].type == "image"


_RENDERERS = {"html": _build("html"), "epub": _build("epub")}


def parse(markdown: str) -> list[Token]:
    """The token stream of the one configured parser (the plain-text renderer walks it)."""
    return _RENDERERS["html"].parse(markdown, {"prefix": ""})


def render(markdown: str, *, path: Path, first_line: int, content_dir: Path, id_prefix: str,
           heading_shift: int = 0, block_ids: bool = False) -> Body:
    """Render Markdown to safe (X)HTML and collect headings and images.

    Image sources are relative to ``content_dir`` and must exist there; errors name
    ``path:line``. ``id_prefix`` keeps anchors unique when documents are combined (the PDF).
    ``heading_shift`` demotes headings (an article's '##' sits under its '#' title).
    ``block_ids`` gives every top-level block an id (``<prefix>_<n>``, which no heading anchor
    can take): the same in the handout and the ebook, so the ebook can mark where each printed
    page begins.
    """
    # Parse once; both flavours render the same token stream (they differ only in output rules).
    md = _RENDERERS["html"]
    env = {"prefix": f"{id_prefix}-"}
    tokens = md.parse(markdown, env)
    if block_ids:
        _number_blocks(tokens, id_prefix)
    headings: list[Heading] = []
    images: list[Image] = []
    used: set[str] = set()
    current_line = first_line
    for i, tok in enumerate(tokens):
        if tok.map:
            current_line = first_line + tok.map[0]
        if tok.type == "heading_open":
            level = min(int(tok.tag[1]) + heading_shift, 6)
            tok.tag = f"h{level}"
            tokens[i + 2].tag = tok.tag
            text = tokens[i + 1].content
            anchor = base = f"{id_prefix}-{slugify(text)}"
            n = 2
            while anchor in used:
                anchor, n = f"{base}-{n}", n + 1
            used.add(anchor)
            tok.attrSet("id", anchor)
            headings.append(Heading(level, _plain(tokens[i + 1]), anchor))
        if tok.type == "inline":
            line = current_line
            for child in tok.children or []:
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "image":
                    images.append(_image(child, md, path, line, content_dir))
                elif child.type == "link_open":
                    check_link(str(child.attrGet("href") or ""), path, line, content_dir.parent)
    epub = _RENDERERS["epub"]
    return Body(
        markdown=markdown,
        html=md.renderer.render(tokens, md.options, env),
        xhtml=epub.renderer.render(tokens, epub.options, env),
        headings=tuple(headings),
        images=tuple(images),
        has_footnotes=any(t.type == "footnote_block_open" for t in tokens),
    )


def _number_blocks(tokens: list[Token], id_prefix: str) -> None:
    """An id on each top-level block (headings keep their own anchors, set by render())."""
    n = 0
    for tok in tokens:
        top = tok.level == 0 and tok.nesting == 1 or tok.type == "footnote_block_open"
        if top and tok.type != "heading_open":
            n += 1
            if not tok.attrGet("id"):
                tok.attrSet("id", f"{id_prefix}_{n}")


def check_link(href: str, path: Path, line: int, project: Path) -> None:
    """Allow only web, mail and phone links, in-page anchors and relative paths in the project."""
    scheme = _SCHEME.match(href)
    if scheme:
        if scheme.group(1).lower() in LINK_SCHEMES:
            return
        problem = f"uses '{scheme.group(1)}:'"
    elif href.startswith(("/", "\\")):
        problem = "is an absolute path"
    elif not (path.parent / href.split("#")[0].split("?")[0]).resolve().is_relative_to(
            project.resolve()):
        problem = "points outside the project"
    else:
        return
    raise ContentError(path, line, f"link '{href}' {problem}; use an http(s)://, mailto: or tel: "
                       "address, or a path relative to this file")


def _plain(inline: Token) -> str:
    return "".join(c.content for c in (inline.children or []) if c.type in ("text", "code_inline"))


def _image(tok: Token, md: MarkdownIt, path: Path, line: int, content_dir: Path) -> Image:
    src = str(tok.attrGet("src") or "")
    alt = RendererHTML().renderInlineAsText(tok.children or [], md.options, {}).strip()
    if not alt:
        raise ContentError(
            path, line, f"image '{src}' has no alt text; write ![what it shows]({src})"
        )
    resolved = resolve_image(src, path, line, content_dir)
    title = tok.attrGet("title")
    return Image(src=src, path=resolved, alt=alt, caption=None if title is None else str(title))


def resolve_image(src: str, path: Path, line: int | None, content_dir: Path) -> Path:
    """Resolve an image reference inside content/, refusing URLs, escapes and missing files."""
    found = _resolve(src, content_dir)
    if isinstance(found, Path):
        return found
    raise ContentError(path, line, found)


def clear_caches() -> None:
    """Forget resolved image paths (called at the start of every load)."""
    _resolve.cache_clear()


@lru_cache(maxsize=1024)
def _resolve(src: str, content_dir: Path) -> Path | str:
    """The resolved file, or the problem with ``src`` (cached for one load: many guides share
    images; load_publication clears it, so a long-running preview sees deleted files)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", src) or src.startswith("/"):
        return f"image '{src}' must be a file under content/, like images/photo.svg"
    if not src.lower().endswith(IMAGE_TYPES):
        return f"image '{src}' must be one of {', '.join(IMAGE_TYPES)}"
    root = content_dir.resolve()
    resolved = (root / src).resolve()
    if not resolved.is_relative_to(root):
        return f"image '{src}' points outside content/; move it into content/images/"
    if not resolved.is_file():
        return f"image '{src}' not found (looked for content/{src})"
    bad = image_problem(resolved, root.parent)
    return f"image '{src}' {bad}" if bad else resolved
