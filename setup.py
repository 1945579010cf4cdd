"""Build hook: ship the top-level themes/ folder inside the package as ``pressroom/themes``
(metadata lives in pyproject.toml). An editable install reads themes/ from the checkout."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

THEMES = Path(__file__).resolve().parent / "themes"


class BuildPyWithThemes(build_py):
    """build_py, plus a copy of themes/ in the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pressroom" / "themes"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(THEMES, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithThemes})
