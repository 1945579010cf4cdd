"""Chromium is found, not assumed: PRESSROOM_CHROMIUM first, then chromium, chromium-browser,
google-chrome on PATH; when none is there the error says what to install."""

from __future__ import annotations

import pytest

from pressroom.browser import find_chromium, require_chromium
from pressroom.errors import RenderError


def fake(folder, name: str, executable: bool = True):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755 if executable else 0o644)
    return path


def test_path_order_chromium_then_chromium_browser_then_google_chrome(tmp_path, monkeypatch):
    monkeypatch.delenv("PRESSROOM_CHROMIUM", raising=False)
    early, late = tmp_path / "early", tmp_path / "late"
    chrome = fake(early, "google-chrome")
    browser = fake(late, "chromium-browser")
    monkeypatch.setenv("PATH", f"{early}:{late}")
    assert find_chromium() == browser  # the name's rank wins over the folder's order on PATH
    chromium = fake(late, "chromium")
    assert find_chromium() == chromium
    chromium.unlink()
    browser.unlink()
    assert find_chromium() == chrome


def test_environment_variable_wins_and_must_be_executable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake(tmp_path / "bin", "chromium").parent))
    mine = fake(tmp_path / "opt", "my-chrome")
    monkeypatch.setenv("PRESSROOM_CHROMIUM", str(mine))
    assert find_chromium() == mine
    mine.chmod(0o644)
    assert find_chromium() is None
    with pytest.raises(RenderError) as error:
        require_chromium()
    assert error.value.message == (
        f"PRESSROOM_CHROMIUM={mine} is not an executable file; point it at Chromium or Chrome, "
        "or unset it to look for chromium, chromium-browser, google-chrome on PATH")


def test_none_found_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("PRESSROOM_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    with pytest.raises(RenderError) as error:
        require_chromium()
    assert error.value.message == (
        "screenshots need Chromium and none was found (chromium, chromium-browser, google-chrome "
        "on PATH): install it (Debian/Ubuntu: sudo apt-get install chromium) or set "
        "PRESSROOM_CHROMIUM to a Chromium or Chrome executable")
