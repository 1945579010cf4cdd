"""Helpers for tests: the repo root, fixture projects, and building them."""

from __future__ import annotations

import shutil
from pathlib import Path

from pressroom.build import build
from pressroom.config import load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


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
