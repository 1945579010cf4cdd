"""PDFs do not depend on the machine's fonts: WeasyPrint sees only the theme's (a private
fontconfig configuration), and every family a stylesheet or SVG names maps to one of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# fonts-dejavu-core (in .ci/run's package list): the only font family a bare Debian has.
SYSTEM_MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


def _extra_fonts_conf(tmp_path: Path) -> Path:
    """A machine with one more font folder, whose font claims 'Helvetica' (as the URW fonts
    do once fonts-urw-base35 is installed)."""
    extra = tmp_path / "extra-fonts"
    extra.mkdir()
    shutil.copy(SYSTEM_MONO, extra / "ExtraMono.ttf")
    conf = tmp_path / "extra-fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{extra}</dir>\n  <cachedir>{tmp_path / 'fc-cache'}</cachedir>\n"
        '  <alias binding="same"><family>Helvetica</family>'
        "<prefer><family>DejaVu Sans Mono</family></prefer></alias>\n"
        "</fontconfig>\n",
        encoding="utf-8",
    )
    return conf


def _build_pdf(project: Path, out: Path, **env: str) -> None:
    """A fresh process, like another machine: fontconfig is read once per process."""
    environ = {k: v for k, v in os.environ.items() if k != "FONTCONFIG_FILE"} | env
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pressroom",
            "build",
            "--format",
            "pdf",
            "--project",
            str(project),
            "--out",
            str(out),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_pdf_bytes_are_the_same_with_extra_system_fonts(project, tmp_path):
    face = project / "content/images/face.svg"
    face.write_text(
        face.read_text(encoding="utf-8").replace(
            "</svg>",
            '<text x="20" y="30" font-family="Helvetica" font-size="20">Brow</text>'
            '<text x="20" y="60" font-family="Some Font, serif" font-size="20">Eye</text>'
            "</svg>",
        ),
        encoding="utf-8",
    )
    _build_pdf(project, tmp_path / "plain")
    _build_pdf(project, tmp_path / "extra", FONTCONFIG_FILE=str(_extra_fonts_conf(tmp_path)))
    for name in ("test-booklet-handout.pdf", "test-booklet-quick-reference.pdf"):
        plain, extra = (
            (tmp_path / "plain" / name).read_bytes(),
            (tmp_path / "extra" / name).read_bytes(),
        )
        assert plain == extra, name
