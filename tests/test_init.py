"""`pressroom init`, placeholder warnings in `check`, and the key reference (`pressroom schema`,
README) against what the loader really reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from projects import FIXTURES, ROOT, copy_project

from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.fields import Fields
from pressroom.placeholders import fake_phone
from pressroom.schema import FILES, reference_markdown

FLAGS = ["--title", "Back Care Basics", "--author", "Robin Testwell", "--practice",
         "Fernbank Physio Test Practice", "--website", "https://fernbank-physio.test",
         "--sender", "news@fernbank-physio.test"]


def init(target: Path, *args: str):
    return CliRunner().invoke(cli, ["init", str(target), *args])


def test_init_scaffolds_a_project_and_refuses_to_overwrite_one(tmp_path):
    result = init(tmp_path / "guide", *FLAGS)
    assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(tmp_path / "guide")) for p in (tmp_path / "guide").rglob("*")
                   if p.is_file())
    assert files == ["content/articles/welcome.md", "content/exercises/exercise-1.md",
                     "content/exercises/exercise-2.md", "content/images/placeholder.svg",
                     "content/newsletters/01-welcome.md", "content/publication.yaml",
                     "content/routines/daily.md", "theme/strings.yaml", "theme/theme.yaml"]
    config = load_config(tmp_path / "guide")
    assert (config.title, config.slug, config.author.name, config.publisher, config.website,
            config.newsletter.sender_address) == (
        "Back Care Basics", "back-care-basics", "Robin Testwell", "Fernbank Physio Test Practice",
        "https://fernbank-physio.test", "news@fernbank-physio.test")
    again = init(tmp_path / "guide", *FLAGS)
    assert again.exit_code == 1
    assert again.output == (f"Error: {tmp_path / 'guide'} already holds a Pressroom project "
                            "(content/publication.yaml); choose a new folder\n")


def test_every_publication_key_is_in_the_scaffold_present_or_commented():
    text = (ROOT / "src" / "pressroom" / "scaffold" / "content" / "publication.yaml").read_text()
    keys = {m.group(1) for m in re.finditer(r"^\s*#?\s*([a-z_]+):", text, re.MULTILINE)}
    # The last named part of each key ("study.<name>" is the study block itself).
    documented = {[p for p in key.path.split(".") if not p.startswith("<")][-1]
                  for key in FILES[0][1]}
    assert documented - keys == set()


def test_a_fresh_project_passes_check_and_strict_names_every_placeholder(tmp_path):
    assert init(tmp_path / "g").exit_code == 0  # no terminal, no flags: placeholders
    project = str(tmp_path / "g")
    result = CliRunner().invoke(cli, ["check", "--project", project])
    assert result.exit_code == 0, result.output
    assert "OK: 1 article(s), 2 exercise(s), 1 routine(s), 1 newsletter(s)." in result.output
    strict = CliRunner().invoke(cli, ["check", "--strict", "--project", project])
    assert strict.exit_code == 1
    config = tmp_path / "g" / "content" / "publication.yaml"
    lines = strict.output.splitlines()
    assert lines[0].startswith("Error: ") and "warning(s) and --strict is on:" in lines[0]
    assert f"{config}:15: 'Your Practice' is a placeholder; give the real name" in lines
    assert f"{config}:20: 'www.example.com' is a placeholder domain; use your real address" in lines
    assert (f"{tmp_path / 'g'}/content/exercises/exercise-1.md:16: scaffold text "
            "'Replace this text' left; write your own") in lines


@pytest.mark.parametrize("phone, fake", [
    ("+44 1622 000000", True), ("020 0000 0000", True), ("+1 (555) 000-0000", True),
    ("+44 1622 123456", False), ("01622 100000", False), ("+44 1234 567890", False)])
def test_fake_phone_numbers(phone, fake):
    assert fake_phone(phone) is fake


def test_an_invented_phone_number_fails_a_strict_check(project):
    config = project / "content" / "publication.yaml"
    config.write_text(config.read_text().replace('"+44 1234 567890"', '"+44 1622 000000"'))
    assert CliRunner().invoke(cli, ["check", "--project", str(project)]).exit_code == 0
    result = CliRunner().invoke(cli, ["check", "--strict", "--project", str(project)])
    assert result.exit_code == 1
    assert result.output == ("Error: 1 warning(s) and --strict is on:\n"
                             f"{config}:19: phone number '+44 1622 000000' looks made up (all "
                             "zeros); give the real one or remove it\n")


def test_schema_command_prints_the_reference_and_readme_carries_it():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == reference_markdown()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- key-reference:start -->\n", 1)[1].split(
        "<!-- key-reference:end -->", 1)[0]
    assert section.strip() == reference_markdown().strip(), "run: pressroom schema"


def _kind(path: Path) -> str:
    return "publication" if path.name == "publication.yaml" else path.parent.name


def test_the_loader_reads_exactly_the_documented_keys(tmp_path, monkeypatch):
    """Docs cannot drift: load four projects while recording every key the loader asks for."""
    seen: dict[str, set[str]] = {}
    original = Fields._get

    def recording(self, key, required):
        path = re.sub(r"\.\d+", "[]", self._key(key))
        path = re.sub(r"^study\.\w+$", "study.<name>", path)  # the study's facts are free names
        seen.setdefault(_kind(self.path), set()).add(path)
        return original(self, key, required)

    monkeypatch.setattr(Fields, "_get", recording)
    assert init(tmp_path / "new", *FLAGS).exit_code == 0
    for project in (ROOT, FIXTURES / "minimal", FIXTURES / "back-care", tmp_path / "new"):
        load_publication(load_config(project))
    kinds = dict(zip(("publication", "articles", "exercises", "routines", "newsletters"),
                     (keys for _title, keys in FILES)))
    for kind, keys in kinds.items():
        read = seen[kind]
        leaves = {k for k in read if not any(o.startswith((k + ".", k + "[]")) for o in read)}
        assert leaves == {key.path for key in keys}, kind


def test_an_overlay_copy_keeps_the_demo_strings(tmp_path):
    project = copy_project("demo", tmp_path / "demo")
    assert (project / "theme" / "strings.yaml").is_file()
