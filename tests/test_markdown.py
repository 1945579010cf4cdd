"""The one Markdown renderer: safe HTML, figures, callouts, footnotes, anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pressroom import markdown
from pressroom.errors import ContentError

FIXTURE = Path(__file__).parent / "fixtures" / "minimal" / "content"


def render(text: str, **kw):
    return markdown.render(text, path=Path("x.md"), first_line=5, content_dir=FIXTURE,
                           id_prefix="doc", **kw)


def test_raw_html_never_passes_through():
    body = render('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert "<script" not in body.html and "<img src=x" not in body.html
    assert "&lt;script&gt;" in body.html


@pytest.mark.parametrize("href,problem", [
    ("javascript:alert(1)", "uses 'javascript:'"),
    ("file:///etc/passwd", "uses 'file:'"),
    ("data:text/html,hi", "uses 'data:'"),
    ("/etc/passwd", "is an absolute path"),
    ("../../../../outside.md", "points outside the project"),
])
def test_links_with_other_schemes_are_errors_at_their_line(href, problem):
    with pytest.raises(ContentError) as err:
        render(f"Intro.\n\nSee\nthe [link]({href}) here.")
    assert err.value.message == (f"x.md:8: link '{href}' {problem}; use an http(s)://, mailto: "
                                 "or tel: address, or a path relative to this file")


def test_web_mail_phone_anchor_and_relative_links_pass():
    body = markdown.render("[a](https://x.example) [b](http://x.example) [c](mailto:a@x.example) "
                           "[d](tel:+441234) [e](#top) [f](../exercises/cheek-lift.md)",
                           path=FIXTURE / "articles" / "intro.md", first_line=5,
                           content_dir=FIXTURE, id_prefix="doc")
    assert body.html.count("<a href=") == 6


def test_file_url_image_is_an_error_not_literal_text():
    with pytest.raises(ContentError) as err:
        render("![x](file:///etc/passwd)")
    assert err.value.message == ("x.md:5: image 'file:///etc/passwd' must be a file under "
                                 "content/, like images/photo.svg")


def test_lone_image_becomes_a_figure_with_caption():
    body = render('![A face](images/face.svg "The caption")')
    assert body.html == ('<figure class="figure">\n<img src="images/face.svg" alt="A face" />\n'
                         "<figcaption>The caption</figcaption>\n</figure>\n")
    assert body.images[0].alt == "A face" and body.images[0].caption == "The caption"


def test_image_errors_name_the_line():
    with pytest.raises(ContentError) as err:
        render("Intro\n\n![Face](images/missing.svg)")
    assert (
        err.value.message
        == "x.md:7: image 'images/missing.svg' not found (looked for content/images/missing.svg)"
    )
    with pytest.raises(ContentError) as err:
        render("![Face](../../../etc/passwd.png)")
    assert "points outside content/" in err.value.message
    with pytest.raises(ContentError) as err:
        render("![Face](https://example.com/a.png)")
    assert "must be a file under content/" in err.value.message


def test_callout_footnotes_tables_deflists_and_typography():
    body = render(
        '::: takeaways Key points\n- one\n:::\n\nSaid "hi" -- twice[^1]\n\nTerm\n: Definition\n\n'
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n[^1]: A note."
    )
    assert (
        '<aside class="callout callout-takeaways" role="note" aria-label="Key points">' in body.html
    )
    assert "“hi” – twice" in body.html
    assert "<dl>" in body.html and "<table>" in body.html
    assert 'role="doc-noteref"' in body.html and 'epub:type' not in body.html
    assert 'epub:type="noteref"' in body.xhtml and '<aside epub:type="footnote"' in body.xhtml
    assert body.has_footnotes


def test_heading_anchors_are_unique_and_prefixed():
    body = render("## Same\n\n## Same\n\n### Café Notes", heading_shift=0)
    assert [h.anchor for h in body.headings] == ["doc-same", "doc-same-2", "doc-cafe-notes"]
    shifted = render("## Title", heading_shift=1)
    assert shifted.html.startswith('<h3 id="doc-title">')
