"""The packages carry the default theme: build the sdist, build the wheel from the unpacked
sdist, install that wheel (not editable) into a new venv, then `pressroom init` and
`pressroom build` there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from projects import ROOT

SKIP = shutil.ignore_patterns(".git", ".venv", "node_modules", "output", "build", "dist",
                              "*.egg-info", ".pressroom", "__pycache__", ".pytest_cache")


def run(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(a) for a in args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_from_sdist_installs_and_builds_a_new_project(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    # The backend pyproject.toml asks for (Python's bundled setuptools is too old for it).
    run(python, "-m", "pip", "install", "--quiet", "setuptools>=77", "wheel", cwd=tmp_path,
        env=env)
    dist = tmp_path / "dist"
    build = "from setuptools import build_meta as b; print('BUILT', b.{}({!r}))"

    def built(text: str) -> Path:
        return dist / next(line.split()[1] for line in text.splitlines()
                           if line.startswith("BUILT "))

    sdist = built(run(python, "-c", build.format("build_sdist", str(dist)), cwd=source, env=env))
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert "pressroom-0.1.0/themes/default/theme.yaml" in names
    unpacked = tmp_path / "unpacked" / "pressroom-0.1.0"
    wheel = built(run(python, "-c", build.format("build_wheel", str(dist)), cwd=unpacked,
                      env=env))
    with zipfile.ZipFile(wheel) as whl:
        inside = set(whl.namelist())
    assert {"pressroom/themes/default/theme.yaml", "pressroom/themes/default/strings.yaml",
            "pressroom/themes/default/fonts/Lato-Regular.ttf",
            "pressroom/scaffold/content/publication.yaml",
            "pressroom/java/EpubCheckDriver.java"} <= inside  # EPUBCheck's priming JVM
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel,
        cwd=tmp_path, env=env)
    # Dependencies come from this test run's environment (no downloads); Pressroom itself
    # must come from the installed wheel, which sits earlier on sys.path.
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=tmp_path, env=env).strip()
    Path(purelib, "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = run(python, "-c", "import pressroom.theme as t; print(t.BUILTIN_THEMES)",
                cwd=tmp_path, env=env).strip()
    assert where == str(Path(purelib) / "pressroom" / "themes")
    pressroom = venv / "bin" / "pressroom"
    run(pressroom, "init", "guide", "--title", "Back Care", "--author", "Robin Testwell",
        "--practice", "Fernbank Physio Test Practice", "--website", "https://fernbank-physio.test",
        "--sender", "news@fernbank-physio.test", cwd=tmp_path, env=env)
    output = run(pressroom, "build", "--project", "guide", cwd=tmp_path, env=env)
    assert "EPUBCheck passed: 0 fatal, 0 error(s), 0 warning(s)" in output
    built = {p.name for p in (tmp_path / "guide" / "output").rglob("*") if p.is_file()}
    assert {"back-care.epub", "back-care-handout.pdf", "back-care-quick-reference.pdf",
            "01-welcome.html", "01-welcome.txt", "index.html"} <= built
