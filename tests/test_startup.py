"""Start-up cost: `--help` and `check` never import the heavy rendering engines."""

from __future__ import annotations

import json
import subprocess
import sys

from projects import FIXTURES

HEAVY = ("weasyprint", "ebooklib", "mjml", "css_inline", "cairosvg", "uharfbuzz", "playwright",
         "flask", "dns", "dkim")  # the rendering engines, the web and the sending stack
PROBE = """
import json, sys
from pressroom.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pressroom", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))), file=sys.stderr)
""" % (HEAVY,)


def heavy_imports(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    return json.loads(out.stderr.strip().splitlines()[-1])


def test_help_and_check_stay_light():
    assert heavy_imports("--help") == []
    assert heavy_imports("check", "--project", str(FIXTURES / "minimal")) == []
