"""The broken-input corpus: every case exits 1 from both `check` and `build` with a message that
names file:line, never a traceback, and leaves output/ exactly as the last good build left it."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.cli import cli

BILLION_LAUGHS = "".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)]
)


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--project", str(project)], catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text {old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (the pixel data is one tiny row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 2))
        + chunk(b"IEND", b"")
    )


def use_image(name: str, data: bytes) -> Callable[[Path], None]:
    """Put ``data`` in content/images/``name`` and show it in the article (line 16)."""

    def mutate(project: Path) -> None:
        (project / "content/images" / name).write_bytes(data)
        edit(project / "content/articles/intro.md", "(images/face.svg", f"(images/{name}")

    return mutate


def replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda project: edit(project / "content" / file, old, new)


def theme_override(text: str) -> Callable[[Path], None]:
    def mutate(project: Path) -> None:
        folder = project / "themes" / "default"
        folder.mkdir(parents=True)
        (folder / "theme.yaml").write_text(text, encoding="utf-8")

    return mutate


def write_bytes(file: str, transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def mutate(project: Path) -> None:
        path = project / "content" / file
        path.write_bytes(transform(path.read_bytes()))

    return mutate


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
       'viewBox="0 0 10 10">{}</svg>')
IMG = "content/articles/intro.md:16: image 'images/{}' "
CASES: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "alias bomb in front matter",
        replace("exercises/cheek-lift.md", "sets: 2\n", "sets: 2\n" + BILLION_LAUGHS),
        "content/exercises/cheek-lift.md:9: YAML anchor '&a0' is not allowed; "
        "write the value out in full",
    ),
    (
        "alias in publication.yaml",
        replace(
            "publication.yaml", "publisher: Test Clinic", "publisher: &p Test Clinic\nrights2: *p"
        ),
        "content/publication.yaml:12: YAML anchor '&p' is not allowed; write the value out in full",
    ),
    (
        "alias in theme.yaml",
        theme_override("name: &n Clinic\nlogo: *n\n"),
        "themes/default/theme.yaml:1: YAML anchor '&n' is not allowed; write the value out in full",
    ),
    (
        "corrupt png",
        use_image("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20),
        IMG.format("broken.png")
        + "cannot be read as an image (Truncated File Read); export it again",
    ),
    (
        "huge png",
        use_image("huge.png", png(20000, 20000)),
        IMG.format("huge.png") + "has over 179 million pixels; images must be at most 30 million "
        "pixels (save a smaller copy)",
    ),
    (
        "large png",
        use_image("large.png", png(8000, 5000)),
        IMG.format("large.png") + "is 8000 x 5000 pixels; images must be at most 30 million "
        "pixels (save a smaller copy)",
    ),
    (
        "empty svg",
        use_image("empty.svg", b""),
        IMG.format("empty.svg") + "is not well-formed SVG (no element found: line 1, column 0); "
        "export it again",
    ),
    (
        "corrupt svg",
        use_image("cut.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0'),
        IMG.format("cut.svg") + "is not well-formed SVG (unclosed token: line 1, column 40); "
        "export it again",
    ),
    (
        "svg with entities",
        use_image(
            "lol.svg",
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a '
            b'"lol">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
        ),
        IMG.format("lol.svg") + "declares a DTD or entities, which are not allowed in SVG here; "
        "remove the <!DOCTYPE>",
    ),
    (
        "svg referencing a url",
        use_image(
            "url.svg",
            SVG.format(
                '<image href="https://tracker.example/p.png" width="5" height="5"/>'
            ).encode(),
        ),
        IMG.format("url.svg") + "refers to 'https://tracker.example/p.png'; an SVG may only use "
        "files inside the project, not URLs",
    ),
    (
        "svg referencing a file outside",
        use_image(
            "out.svg",
            SVG.format('<image xlink:href="../../../secret.png" width="5" height="5"/>').encode(),
        ),
        IMG.format("out.svg") + "refers to '../../../secret.png', outside the project; move that "
        "file into the project",
    ),
    (
        "svg css url",
        use_image(
            "css.svg",
            SVG.format(
                '<rect style="fill: url(http://x.example/f.svg#p)" width="5" height="5"/>'
            ).encode(),
        ),
        IMG.format("css.svg") + "refers to 'http://x.example/f.svg#p'; an SVG may only use "
        "files inside the project, not URLs",
    ),
    (
        "file url image",
        replace("articles/intro.md", "(images/face.svg", "(file:///etc/passwd"),
        "content/articles/intro.md:16: image 'file:///etc/passwd' must be a file under content/, "
        "like images/photo.svg",
    ),
    (
        "javascript link",
        replace("articles/intro.md", "## What next", "[x](javascript:alert(1))"),
        "content/articles/intro.md:20: link 'javascript:alert(1)' uses 'javascript:'; use an "
        "http(s)://, mailto: or tel: address, or a path relative to this file",
    ),
    (
        "smtp port not a number",
        replace(
            "publication.yaml",
            "disclaimer:",
            "smtp:\n  host: mail.example\n  port: not-a-port\ndisclaimer:",
        ),
        "content/publication.yaml:29: 'smtp.port' must be a whole number, got 'not-a-port'",
    ),
    (
        "smtp misspelt key",
        replace(
            "publication.yaml",
            "disclaimer:",
            "smtp:\n  host: mail.example\n  prot: 25\ndisclaimer:",
        ),
        "content/publication.yaml:29: unknown key 'smtp.prot' — did you mean 'port'?",
    ),
    (
        "mail store inside output",
        replace(
            "publication.yaml",
            "disclaimer:",
            "mail:\n  store: output/subscribers.sqlite3\ndisclaimer:",
        ),
        "content/publication.yaml:28: 'mail.store' must be outside the output folder {out} "
        "(a deleted "
        "build must never lose subscribers)",
    ),
    (
        "empty font list",
        theme_override("fonts:\n  body:\n    files: []\n"),
        "themes/default/theme.yaml:3: 'fonts.body.files' must be a list of at least 1 entries",
    ),
    (
        "missing font file",
        theme_override("fonts:\n  heading:\n    files:\n      - {file: fonts/Nope.ttf}\n"),
        "themes/default/theme.yaml:4: theme file 'fonts/Nope.ttf' not found in {theme}",
    ),
    (
        "bad colour",
        theme_override("colours:\n  ink: 'red; } body { display: none'\n"),
        "themes/default/theme.yaml:2: 'colours.ink' must be a colour like #2F6F6A, got "
        "'red; }} body {{ display: none'",
    ),
    (
        "misspelt theme key",
        theme_override("size:\n  body_pts: 12\n"),
        "themes/default/theme.yaml:2: unknown key 'size.body_pts' — did you mean 'body_pt'?",
    ),
    (
        "duplicate exercise title",
        replace("exercises/jaw-release.md", "title: Jaw Release", "title: Cheek Lift"),
        "content/exercises/jaw-release.md:2: duplicate exercise title 'Cheek Lift' (also used at "
        "content/exercises/cheek-lift.md:2); make it unique",
    ),
    (
        "latin-1 file",
        write_bytes(
            "articles/intro.md",
            lambda b: b.replace(b"Why bother", "Why bother, café".encode("latin-1")),
        ),
        "content/articles/intro.md:7: is not UTF-8 (byte 0xe9 looks like Windows-1252 (Latin-1)); "
        "save the file as UTF-8",
    ),
    (
        "utf-16 file",
        write_bytes("articles/intro.md", lambda b: b.decode().encode("utf-16")),
        "content/articles/intro.md:1: is UTF-16 text; save it as UTF-8",
    ),
]


@pytest.fixture(scope="module")
def good_build(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """One good email build of the minimal project, copied for each case."""
    from projects import copy_project

    project = copy_project("minimal", tmp_path_factory.mktemp("good") / "proj")
    result = run(project, "build", "--format", "email")
    assert result.exit_code == 0, result.output
    return project, snapshot(project / "output")


@pytest.mark.parametrize("name,mutate,message", CASES, ids=[c[0] for c in CASES])
def test_broken_input_stops_check_and_build(
    good_build, tmp_path, monkeypatch, name, mutate, message
):
    import shutil

    project = tmp_path / "proj"
    shutil.copytree(good_build[0], project)
    monkeypatch.chdir(project)
    mutate(project)
    expected = message.format(
        out=project / "output", theme=", ".join(str(p) for p in _theme_folders(project))
    )
    for command in ("check", "build"):
        result = run(project, command)
        assert (result.exit_code, result.output) == (1, f"Error: {expected}\n"), command
    assert snapshot(project / "output") == good_build[1]


def _theme_folders(project: Path) -> list[Path]:
    from pressroom.theme import BUILTIN_THEMES

    return [(project / "themes" / "default").resolve(), (BUILTIN_THEMES / "default").resolve()]


def test_epubcheck_failure_writes_nothing_and_marks_nothing_up_to_date(project, monkeypatch):
    monkeypatch.chdir(project)
    assert run(project, "build", "--format", "epub", "--no-validate").exit_code == 0
    before = snapshot(project / "output")
    override = project / "themes/default/epub/back.xhtml"
    override.parent.mkdir(parents=True)
    builtin = Path(__file__).parents[1] / "themes/default/epub/back.xhtml"
    override.write_text(
        builtin.read_text(encoding="utf-8").replace(
            "</section>", '<p><a href="#no-such-anchor">Broken</a></p>\n</section>'
        ),
        encoding="utf-8",
    )
    result = run(project, "build", "--format", "epub")
    assert result.exit_code == 1
    assert "Error: EPUBCheck FAILED: 0 fatal, 1 error(s)" in result.output
    assert "RSC-012" in result.output
    assert result.output.endswith(
        "EPUBCheck found problems in test-booklet.epub; nothing was written\n"
    )
    assert snapshot(project / "output") == before  # nor the cache manifest: not "up to date"


def test_a_byte_order_mark_is_accepted_in_every_file(project, monkeypatch):
    monkeypatch.chdir(project)
    theme = project / "themes/default/theme.yaml"
    theme.parent.mkdir(parents=True)
    theme.write_text("name: Clinic\n", encoding="utf-8")
    for path in (
        project / "content/publication.yaml",
        project / "content/articles/intro.md",
        project / "content/exercises/cheek-lift.md",
        theme,
    ):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run(project, "check")
    assert (result.exit_code, result.output) == (
        0,
        "OK: 1 article(s), 2 exercise(s), 2 routine(s), 1 newsletter(s).\n",
    )
