"""scripts/system-deps.sh: reads one section (or build + test) of a package list, finds what is
missing with dpkg, and prints the exact install command (the real install needs root and apt;
it is exercised by `make` itself on a fresh machine)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "system-deps.sh"
MISSING = "pressroom-test-no-such-package"
LIST = f"""# a comment
[build]
dpkg                     # always installed on Debian/Ubuntu
{MISSING}-a   # trailing comment
{MISSING}-alt  true      # the check after the name counts as present

[test]
{MISSING}-b
"""


def run(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as folder:  # in /tmp: readable by another user too
        Path(folder).chmod(0o755)
        listing = Path(folder) / "packages.txt"
        listing.write_text(LIST, encoding="utf-8")
        env = {**os.environ, "PRESSROOM_SYSTEM_PACKAGES": str(listing)}
        command = [str(SCRIPT), *args]
        if as_nobody:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_real_list_is_satisfied_on_this_machine():
    result = subprocess.run([str(SCRIPT), "test", "--dry-run"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("System packages (test): all ")


@pytest.mark.parametrize("section, missing", [("build", f"{MISSING}-a"),
                                              ("test", f"{MISSING}-a {MISSING}-b")])
def test_dry_run_names_exactly_the_missing_packages(section, missing):
    result = run(section, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"System packages ({section}): missing {missing}\n"
        f"Would run: apt-get update && apt-get install -y --no-install-recommends {missing}\n")


def test_without_root_it_stops_with_the_sudo_line():
    result = run("test", as_nobody=os.getuid() == 0)  # as root: drop to nobody (setpriv)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"System packages (test): missing {MISSING}-a {MISSING}-b\n"
        "Install them, then run make again:\n"
        f"  sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        f"{MISSING}-a {MISSING}-b\n")


def test_an_unknown_section_or_unreadable_list_is_refused(tmp_path):
    result = run("deploy")
    assert result.returncode == 2
    assert result.stderr == "system-deps.sh: unknown section 'deploy' (build or test)\n"
    result = subprocess.run([str(SCRIPT), "build"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PRESSROOM_SYSTEM_PACKAGES": str(tmp_path / "no")})
    assert result.returncode == 2
    assert result.stderr == f"system-deps.sh: cannot read the package list {tmp_path / 'no'}\n"


def test_the_readme_shows_the_same_list():
    sections: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "system-packages.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif line:
            sections.setdefault(current, []).append(line.split()[0])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `make build` | {' '.join(sections['build'])} |" in readme
    assert f"| `make test` (also) | {' '.join(sections['test'])} |" in readme
