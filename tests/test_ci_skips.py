"""The CI rule: with CI=true a skipped test fails the run; without it, a skip is only reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SUITE = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason="needs a tool this machine lacks")
def test_marked():
    pass

def test_skips_itself():
    pytest.skip("found no browser")
'''

MODULE_SKIP = '''
import pytest
pytest.skip("no browser here", allow_module_level=True)
'''


def run(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(TESTS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ci_skips", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_skips_are_only_reported_outside_ci(tmp_path):
    result = run(tmp_path, SUITE, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_skips_fail_under_ci(tmp_path, ci):
    result = run(tmp_path, SUITE, ci)
    assert result.returncode == 1, result.stdout
    # A skip marker acts in setup, so it shows as an error; pytest.skip() in the body as a failure.
    assert result.stdout.splitlines()[-1].startswith("1 failed, 1 passed, 1 error in ")
    assert "skipped under CI=true, which counts as a failure: Skipped: needs a tool this " \
        "machine lacks" in result.stdout
    assert "skipped under CI=true, which counts as a failure: Skipped: found no browser" \
        in result.stdout


def test_a_module_skipped_at_collection_fails_under_ci(tmp_path):
    assert run(tmp_path, MODULE_SKIP, None).stdout.splitlines()[-1].startswith("1 skipped in ")
    result = run(tmp_path, MODULE_SKIP, "true")
    assert result.returncode != 0, result.stdout
    assert "no browser here" in result.stdout
