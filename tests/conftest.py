"""Shared fixtures: each fixture project is built once per session, into a temporary folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pressroom.build import build
from pressroom.config import load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01, reproducible outputs


def copy_project(name: str, dest: Path) -> Path:
    """Copy a fixture project (or 'demo' for the repo's own content) to ``dest``."""
    src = ROOT if name == "demo" else FIXTURES / name
    shutil.copytree(src / "content", dest / "content")
    if (src / "themes").is_dir() and name != "demo":
        shutil.copytree(src / "themes", dest / "themes")
    return dest


def build_project(project: Path, **overrides) -> Path:
    """Build every format of ``project``; return its output folder."""
    config = load_config(project).with_overrides(**overrides)
    build(config)
    return config.out


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> Path:
    """The clinic's real content, built once: the output folder."""
    project = copy_project("demo", tmp_path_factory.mktemp("demo"))
    return build_project(project)


@pytest.fixture(scope="session")
def minimal_out(tmp_path_factory) -> Path:
    """The tiny fixture project, built once: the output folder."""
    project = copy_project("minimal", tmp_path_factory.mktemp("minimal"))
    return build_project(project)


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh, writable copy of the minimal fixture project for tests that edit content."""
    return copy_project("minimal", tmp_path / "proj")
