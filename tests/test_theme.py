"""The theme loader: ordered folders, merged tokens, autoescape and StrictUndefined."""

from __future__ import annotations

import pytest

from pressroom.config import load_config
from pressroom.errors import ThemeError
from pressroom.theme import BUILTIN_THEMES, load_theme


def test_project_theme_overrides_default(project):
    override = project / "themes/default"
    (override / "email").mkdir(parents=True)
    (override / "theme.yaml").write_text('colours:\n  brand: "#123456"\n')
    (override / "email/hello.mjml").write_text("{{ value }}")
    theme = load_theme(load_config(project))
    assert theme.folders[0] == override.resolve()
    assert theme.folders[-1] == (BUILTIN_THEMES / "default").resolve()
    assert theme.tokens["colours"]["brand"] == "#123456"
    assert theme.tokens["colours"]["accent"] == "#B4583E"  # merged, not replaced
    assert theme.render("email/hello.mjml", value="<b>") == "&lt;b&gt;"


def test_undefined_and_syntax_errors_name_the_template(project):
    override = project / "themes/default/pdf"
    override.mkdir(parents=True)
    (override / "broken.html").write_text("line one\n{{ missing_value }}\n")
    (override / "bad.html").write_text("ok\n{% if %}\n")
    theme = load_theme(load_config(project))
    with pytest.raises(ThemeError) as err:
        theme.render("pdf/broken.html")
    assert err.value.message.endswith("broken.html:2: 'missing_value' is undefined")
    with pytest.raises(ThemeError) as err:
        theme.render("pdf/bad.html")
    assert "bad.html:2:" in err.value.message


def test_unknown_theme(project):
    cfg = project / "content/publication.yaml"
    cfg.write_text(cfg.read_text() + "theme: fancy\n")
    with pytest.raises(ThemeError) as err:
        load_theme(load_config(project))
    assert "theme 'fancy' not found" in err.value.message


def test_compiled_templates_are_cached_and_follow_edits(project):
    override = project / "themes/default/email"
    override.mkdir(parents=True)
    (override / "hello.mjml").write_text("one {{ value }}")
    assert load_theme(load_config(project)).render("email/hello.mjml", value=1) == "one 1"
    cached = list((project / ".pressroom/cache/jinja").iterdir())
    assert cached, "compiled template not cached"
    # A fresh environment (a new build) reads the cache, and an edit is never served stale.
    assert load_theme(load_config(project)).render("email/hello.mjml", value=2) == "one 2"
    (override / "hello.mjml").write_text("two {{ value }}")
    assert load_theme(load_config(project)).render("email/hello.mjml", value=3) == "two 3"


def test_unwritable_template_cache_only_costs_time(project):
    (project / ".pressroom").mkdir()
    (project / ".pressroom/cache").write_text("not a folder")  # mkdir fails, even as root
    override = project / "themes/default/email"
    override.mkdir(parents=True)
    (override / "hello.mjml").write_text("one {{ value }}")
    assert load_theme(load_config(project)).render("email/hello.mjml", value=1) == "one 1"
