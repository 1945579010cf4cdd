"""The PDF renderer's URL fetcher: project files and data: URIs only, everything else a clean
RenderError naming the document and the reference, and never a network connection."""

from __future__ import annotations

import socket
from urllib.parse import urljoin

import pytest
from click.testing import CliRunner

from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.errors import PressroomError, RenderError
from pressroom.render.urlfetch import make_fetcher, theme_fonts_in_svg
from pressroom.render.pdf import html_to_pdf
from pressroom.theme import BUILTIN_THEMES, load_theme

DOC = "test.pdf"
OUTSIDE = "it is outside the project's content and theme folders"
NO_NETWORK = ("only files inside the project can be used (no network access); "
              "copy it into content/images/")
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       '<rect width="10" height="10"/></svg>')


@pytest.fixture
def loaded(project):
    """(publication, theme) of a fresh copy of the minimal project."""
    config = load_config(project)
    return load_publication(config), load_theme(config)


def page(body: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><title>t</title></head><body>{body}</body></html>'


def refusal(loaded, body: str) -> str:
    pub, theme = loaded
    with pytest.raises(RenderError) as err:
        html_to_pdf(page(body), pub, theme, DOC)
    assert isinstance(err.value, PressroomError)  # a ClickException: "Error: ..." and exit 1
    return err.value.message


def test_file_url_outside_the_project_is_refused(loaded):
    assert refusal(loaded, '<img src="file:///etc/passwd" alt="x" />') == (
        f"{DOC}: refused to load 'file:///etc/passwd': {OUTSIDE}")


def test_attachment_link_is_refused(loaded):
    """WeasyPrint would otherwise embed the file in the PDF as an attachment."""
    assert refusal(loaded, '<link rel="attachment" href="file:///etc/passwd" />') == (
        f"{DOC}: refused to load 'file:///etc/passwd': {OUTSIDE}")


def test_stylesheet_and_background_urls_are_refused(loaded):
    for body in ('<link rel="stylesheet" href="file:///etc/passwd" />',
                 '<div style="background: url(file:///etc/passwd)">x</div>'):
        assert refusal(loaded, body) == f"{DOC}: refused to load 'file:///etc/passwd': {OUTSIDE}"


def test_dot_dot_escape_is_refused(loaded):
    pub, _ = loaded
    # WeasyPrint resolves the reference against content/ before the fetcher sees it.
    url = urljoin(pub.config.content_dir.as_uri() + "/", "../../etc/passwd")
    assert refusal(loaded, '<img src="../../etc/passwd" alt="x" />') == (
        f"{DOC}: refused to load '{url}': {OUTSIDE}")


def test_absolute_path_is_refused(loaded):
    assert refusal(loaded, '<img src="/etc/passwd" alt="x" />') == (
        f"{DOC}: refused to load 'file:///etc/passwd': {OUTSIDE}")


def test_symlink_pointing_outside_is_refused(loaded, tmp_path):
    pub, _ = loaded
    outside = tmp_path / "elsewhere" / "secret.svg"
    outside.parent.mkdir()
    outside.write_text(SVG, encoding="utf-8")  # a perfectly good image, just not ours
    link = pub.config.content_dir / "images" / "escape.svg"
    link.symlink_to(outside)
    assert refusal(loaded, '<img src="images/escape.svg" alt="x" />') == (
        f"{DOC}: refused to load '{link.as_uri()}': it is a link to '{outside.resolve()}', "
        "outside the project's content and theme folders")


def test_loopback_http_is_refused_without_connecting(loaded):
    assert refusal(loaded, '<img src="http://127.0.0.1/" alt="x" />') == (
        f"{DOC}: refused to load 'http://127.0.0.1/': {NO_NETWORK}")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/logo.png"
        assert refusal(loaded, f'<img src="{url}" alt="x" />') == (
            f"{DOC}: refused to load '{url}': {NO_NETWORK}")
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked


def test_project_files_and_data_uris_are_allowed(loaded):
    pub, theme = loaded
    inside = pub.config.content_dir / "images" / "alias.svg"
    inside.symlink_to(pub.config.content_dir / "images" / "face.svg")  # a link that stays home
    body = ('<img src="images/face.svg" alt="a face" /><img src="images/alias.svg" alt="a face" />'
            '<img src="data:image/svg+xml;utf8,' + SVG.replace('"', "'") + '" alt="a square" />')
    assert html_to_pdf(page(body), pub, theme, DOC).startswith(b"%PDF-")


def test_fetcher_unit_cases(tmp_path):
    root = tmp_path / "content"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.svg").write_text(SVG, encoding="utf-8")
    fetcher = make_fetcher([root], DOC)
    assert fetcher((root / "images" / "a.svg").as_uri()).read() == SVG.encode()
    assert fetcher("data:text/plain;base64,aGk=").read() == b"hi"
    cases = {
        (root / "images" / "missing.svg").as_uri(): "file not found",
        (root / "images").as_uri(): "not a file",
        "file://otherhost/etc/passwd": "files on other hosts cannot be used",
        "ftp://127.0.0.1/x.svg": NO_NETWORK,
        "https://example.com/x.svg": NO_NETWORK,
    }
    for url, reason in cases.items():
        with pytest.raises(fetcher.refused) as err:
            fetcher(url)
        assert str(err.value) == f"{DOC}: refused to load '{url}': {reason}"


def test_build_with_a_hostile_theme_fails_and_writes_nothing(project):
    """End to end: a project theme that tries to attach /etc/passwd stops `pressroom build`."""
    override = project / "themes" / "default" / "pdf"
    override.mkdir(parents=True)
    html = (BUILTIN_THEMES / "default" / "pdf" / "handout.html").read_text(encoding="utf-8")
    html = html.replace("<head>", '<head>\n<link rel="attachment" href="file:///etc/passwd" />', 1)
    (override / "handout.html").write_text(html, encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", "--format", "pdf", "--project", str(project)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        "Error: test-booklet-handout.pdf: refused to load 'file:///etc/passwd': " + OUTSIDE)
    assert not (project / "output").exists()


def test_svg_generic_fonts_become_theme_fonts():
    generic = {"sans-serif": "Lato", "serif": "EB Garamond"}
    assert theme_fonts_in_svg('<text font-family="sans-serif">', generic) == (
        '<text font-family="Lato">')
    assert theme_fonts_in_svg("<text font-family='Georgia, serif'>", generic) == (
        "<text font-family='Georgia, EB Garamond'>")
    assert theme_fonts_in_svg('<text style="font-size: 3px; font-family: sans-serif ;">',
                              generic) == '<text style="font-size: 3px; font-family: Lato ;">'
    assert theme_fonts_in_svg("<style>.l { font-family: Lato }</style>", generic) == (
        "<style>.l { font-family: Lato }</style>")
