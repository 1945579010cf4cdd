"""pytest plugin: under CI (``CI=true``) a skipped test, or a skipped module, is a failure.

A skip means the suite did not test something (a missing browser, tool or package); on a
developer's machine it is reported, in CI it must not pass silently.
"""

from __future__ import annotations

import os

import pytest

CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report) -> None:
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {_reason(report)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test (skip marker, pytest.skip(), importorskip) fails under CI."""
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A module skipped at collection (pytest.skip(allow_module_level=True)) fails under CI."""
    report = yield
    _fail_skip(report)
    return report
