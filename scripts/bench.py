"""`make bench`: measure the whole pipeline on this machine and write output/bench.json.

A script, not a test. Every figure in the README's Performance table comes from one run of it:
- "cold" = an empty derived-file cache in a fresh copy of the project (a new temp copy per run);
  "warm" = the same copy built before, its cache reused;
- where two things are compared, each is run BENCH_ROUNDS times (default 5), alternating in
  every round so that drift in the machine's speed hits both; each figure is the median with
  min-max;
- per-page and per-message figures are computed here from measured times and counted pages.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))  # fewer only for trying the script out
os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")

# The `pressroom` command's own path: a no-op build is answered by pressroom.fastpath before
# the CLI loads (older checkouts have no fastpath), anything else by the CLI.
CHILD = r"""
import json, resource, sys, time
t = time.perf_counter()
try:
    from pressroom.fastpath import noop_report
except ImportError:
    noop_report = lambda argv: None
report = noop_report(sys.argv[1:])
if report is not None:
    sys.stdout.write(report)
else:
    from pressroom.cli import cli
    try:
        cli.main(args=sys.argv[1:], prog_name="pressroom", standalone_mode=False)
    except SystemExit:
        pass
took = time.perf_counter() - t
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print("@@BENCH@@" + json.dumps({"seconds": took, "peak_mb": rss / 1024}), file=sys.stderr)
"""


def stats(values: list[float], digits: int = 3) -> dict:
    """Median with min-max (and every value, in run order)."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values),
            "runs": [round(v, digits) for v in values]}


def alternate(rounds: int, fns: dict[str, Callable[[], float | None]]) -> dict[str, dict]:
    """Run every function once per round, in turn; a function returns its own time (or None to
    be timed whole here)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            took = fn()
            times[name].append(took if took is not None else time.perf_counter() - start)
    return {k: stats(v) for k, v in times.items()}


def run_build(project: Path, *args: str, out: Path | None = None, validate: bool = False,
              src: Path | None = None, env: dict[str, str] | None = None) -> dict:
    """One `pressroom build` in a fresh process: wall time (whole process) and peak memory.
    ``validate`` runs EPUBCheck as `make build` does; ``src`` runs another checkout's code;
    ``env`` adds environment variables."""
    out = out or project / "output"
    cmd = [PY, "-c", CHILD, "build", "--project", str(project), "--out", str(out),
           "--validate" if validate else "--no-validate", *args]
    env = {**os.environ, **(env or {})}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src / "src"), str(src.parent / "extra")])
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or "@@BENCH@@" not in proc.stderr:
        raise SystemExit(f"build failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stderr.split("@@BENCH@@")[1].splitlines()[0])
    return {"wall_s": wall, "peak_mb": data["peak_mb"]}


class Copies:
    """Fresh copies of a project under one temp dir: each has no .pressroom cache, no output."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.n = tmp, 0

    def __call__(self, source: Path) -> Path:
        self.n += 1
        dest = self.tmp / f"copy-{self.n:04d}"
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".pressroom", "output"))
        return dest

    def cold(self, source: Path, *args: str, peak: list | None = None,
             after: Callable[[Path], None] | None = None, validate: bool = False,
             src: Path | None = None,
             env: Callable[[], dict[str, str]] | None = None) -> Callable[[], float]:
        def run() -> float:
            project = self(source)  # copying is not timed
            result = run_build(project, *args, validate=validate, src=src,
                               env=env() if env else None)
            if peak is not None:
                peak.append(result["peak_mb"])
            if after is not None:
                after(project)
            shutil.rmtree(project, ignore_errors=True)
            return result["wall_s"]
        return run


def demo_source(dest: Path) -> Path:
    """The demo project (its content/ folder) as a template to copy from."""
    shutil.copytree(ROOT / "content", dest / "content")
    return dest


def synthetic(dest: Path, articles: int, exercises: int, newsletters: int) -> Path:
    """A project with the demo's texts multiplied: N articles, M exercises, K newsletters."""
    src = ROOT / "content"
    content = dest / "content"
    shutil.copytree(src, content)
    for folder in ("articles", "exercises", "newsletters"):
        shutil.rmtree(content / folder)
        (content / folder).mkdir()
    article = (src / "articles/facial-yoga-symmetry.md").read_text()
    for i in range(articles):
        text = article.replace(
            'title: "Facial Yoga: The Secret to Symmetry?"', f'title: "Facial Yoga, part {i + 1}"'
        ).replace("order: 1", f"order: {i + 1}")
        head, body = text.split("\n---\n", 1)
        # The repeated half drops its footnote references (each would be a second anchor).
        again = re.sub(r"\[\^[^\]]+\]", "", body.split("[^1]:")[0])
        (content / f"articles/part-{i + 1:03d}.md").write_text(
            head + "\n---\n" + body + "\n" + again
        )
    originals = sorted((src / "exercises").glob("*.md"))
    for i in range(exercises):
        orig = originals[i % len(originals)]
        text = orig.read_text()
        title = re.search(r"^title: (.*)$", text, re.M).group(1).strip('"')
        n = i // len(originals)
        name = orig.stem if n == 0 else f"{orig.stem}-{n}"
        if n:
            text = re.sub(r"^title: .*$", f'title: "{title} ({n + 1})"', text, count=1, flags=re.M)
        (content / f"exercises/{name}.md").write_text(text)
    letters = sorted((src / "newsletters").glob("*.md"))
    for i in range(newsletters):
        text = letters[i % len(letters)].read_text()
        text = re.sub(r"^number: .*$", f"number: {i + 1}", text, count=1, flags=re.M)
        (content / f"newsletters/{i + 1:03d}-issue.md").write_text(text)
    return dest


def pdf_pages(path: Path) -> int:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    m = re.search(r"^Pages:\s+(\d+)", out, re.M)
    if not m:
        raise SystemExit(f"pdfinfo could not count the pages of {path}")
    return int(m.group(1))


def bench_startup(results: dict) -> None:
    """`pressroom --help` and `pressroom check` in a fresh process."""
    script = str(Path(PY).parent / "pressroom")

    def run(*args: str) -> Callable[[], None]:
        return lambda: subprocess.run([script, *args], check=True, capture_output=True) and None

    results["startup"] = alternate(ROUNDS, {"help_s": run("--help"),
                                            "check_s": run("check", "--project", str(ROOT))})


def bench_demo(tmp: Path, copies: Copies, results: dict) -> None:
    """Cold builds (fresh copy each), no-op and edit rebuilds on one warm copy, alternating."""
    source = demo_source(tmp / "demo-source")
    demo = results["demo"] = {}
    demo["cold_by_format"] = alternate(ROUNDS, {
        fmt: copies.cold(source, "--format", fmt) for fmt in ("epub", "pdf", "email")})
    warm = copies(source)
    run_build(warm)  # fills the warm copy's cache and output
    ex = warm / "content/exercises/cheek-lift.md"
    nl = warm / "content/newsletters/03-symmetry-self-check.md"
    ex_text, nl_text = ex.read_text(), nl.read_text()
    assert "Clenching the teeth" in ex_text
    edits = {"n": 0}
    peak: list[float] = []

    def noop() -> float:
        return run_build(warm)["wall_s"]

    def edit_exercise() -> float:
        edits["n"] += 1  # a different text each round: always a real edit
        ex.write_text(ex_text.replace("Clenching the teeth", f"Clenching the teeth ({edits['n']})"))
        return run_build(warm)["wall_s"]

    def edit_newsletter() -> float:
        nl.write_text(nl_text + f"\nOne more line ({edits['n']}).\n")
        return run_build(warm)["wall_s"]

    demo["all_formats"] = alternate(ROUNDS, {
        "cold": copies.cold(source, peak=peak), "noop": noop, "edit_exercise": edit_exercise,
        "edit_newsletter": edit_newsletter})
    cold = demo["all_formats"]["cold"]["median"]
    demo["share_of_cold"] = {k: round(demo["all_formats"][k]["median"] / cold, 3)
                             for k in ("noop", "edit_exercise", "edit_newsletter")}
    demo["peak_mb_cold"] = round(max(peak), 1)
    demo["handout_pages"] = pdf_pages(warm / "output/facial-yoga-handout.pdf")


OLD_COMMIT = "4b127ff"  # before #22's fast first build: the baseline of its 60% bar
# What 4b127ff needs that this tree no longer installs (its SVG rasteriser), as locked then.
OLD_EXTRA = ("cairosvg==2.9.1", "cairocffi==1.7.1")


def compiled(src: Path) -> None:
    """Byte-compile a checkout's sources, as an installed package is: every timed process then
    loads .pyc files (even where PYTHONDONTWRITEBYTECODE is set) instead of compiling
    Pressroom's own modules on each start."""
    subprocess.run([PY, "-m", "compileall", "-q", str(src)], check=True)


def old_checkout(tmp: Path) -> Path:
    """OLD_COMMIT's tree beside this one (git archive), run with this .venv plus OLD_EXTRA."""
    tree = tmp / "old" / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    compiled(tree / "src")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(tmp / "old" / "extra"), *OLD_EXTRA], check=True, capture_output=True)
    return tree


def bench_vs_old(tmp: Path, copies: Copies, results: dict) -> None:
    """The demo's full build (all formats, empty cache, no EPUBCheck): this tree against
    OLD_COMMIT, alternating. Each builds its own demo content (4b127ff rejects today's
    publication.yaml: fields were added since)."""
    tree = old_checkout(tmp)
    old_source = tmp / "old-demo"
    shutil.copytree(tree / "content", old_source / "content")
    source = demo_source(tmp / "new-demo")
    runs = alternate(ROUNDS, {"new": copies.cold(source), "old": copies.cold(old_source,
                                                                              src=tree)})
    results["vs_old"] = {"old_commit": OLD_COMMIT, **runs,
                         "ratio": round(runs["new"]["median"] / runs["old"]["median"], 3)}


def bench_validation(tmp: Path, copies: Copies, results: dict) -> None:
    """`make build`'s build of the demo (empty cache) with EPUBCheck and without, alternating.

    With EPUBCheck, in three situations (each in a runtime folder of the bench's own):
    - "with_epubcheck": a JVM kept ready by an earlier build (keptjvm.py), as on a machine
      that built in the last PRESSROOM_EPUBCHECK_KEEP seconds;
    - "jvm_started": no JVM kept, so the build starts one (PRESSROOM_EPUBCHECK_KEEP=0);
    - "first_on_machine": that, and an empty user cache, so the JVM also compiles its driver
      class (pressroom/java/EpubCheckDriver.java)."""
    source = demo_source(tmp / "validate-demo")
    runtime = tmp / "run"
    runtime.mkdir(mode=0o700)
    machine = {"XDG_CACHE_HOME": str(tmp / "user-cache"), "XDG_RUNTIME_DIR": str(runtime)}
    not_kept = {**machine, "PRESSROOM_EPUBCHECK_KEEP": "0"}
    kept = {**machine, "PRESSROOM_EPUBCHECK_KEEP": "3600"}
    run_build(copies(source), validate=True, env=kept)  # compiles the driver; the JVM is kept
    fresh = {"n": 0}

    def empty_user_cache() -> dict[str, str]:
        fresh["n"] += 1
        return {**not_kept, "XDG_CACHE_HOME": str(tmp / f"empty-user-cache-{fresh['n']}")}

    try:
        runs = alternate(ROUNDS, {
            "with_epubcheck": copies.cold(source, validate=True, env=lambda: kept),
            "without": copies.cold(source),
            "jvm_started": copies.cold(source, validate=True, env=lambda: not_kept),
            "first_on_machine": copies.cold(source, validate=True, env=empty_user_cache)})
    finally:
        subprocess.run([PY, "-c", CHILD, "stop-epubcheck"], env={**os.environ, **kept},
                       capture_output=True)
    without = runs["without"]["median"]
    results["epubcheck_cost"] = {**runs, **{
        f"added{suffix}_s": round(runs[name]["median"] - without, 2)
        for name, suffix in (("with_epubcheck", ""), ("jvm_started", "_started"),
                             ("first_on_machine", "_first"))}}


def bench_large(tmp: Path, copies: Copies, results: dict) -> None:
    """Growth: a project 3x the size of another, cold builds, alternating."""
    small_n, big_n = (1, 12, 1), (3, 36, 3)
    small = synthetic(tmp / "small-source", *small_n)
    big = synthetic(tmp / "big-source", *big_n)
    peak: list[float] = []
    pages: list[int] = []
    label = "articles, exercises, newsletters: %d, %d, %d"
    large = results["large"] = {"small": label % small_n, "big": label % big_n}
    large["cold_all"] = alternate(ROUNDS, {"small": copies.cold(small),
                                           "big": copies.cold(big, peak=peak, after=lambda p:
                                           pages.append(pdf_pages(
                                               p / "output/facial-yoga-handout.pdf")))})
    large["growth_3x"] = round(large["cold_all"]["big"]["median"]
                                / large["cold_all"]["small"]["median"], 2)
    large["peak_mb_big"] = round(max(peak), 1)
    large["big_handout_pages"] = pages[-1]


def strip_front_matter(text: str) -> tuple[str, str]:
    """(title, body) of a Markdown file with YAML front matter."""
    _, head, body = text.split("---\n", 2)
    title = re.search(r"^title:\s*\"?(.*?)\"?\s*$", head, re.M).group(1)
    return title, body


# Pandoc makes no print page list, so the compared ebook has none either (the page list needs
# the handout's layout, #20); the demo's publication.yaml has no epub: block of its own.
EQUAL_WORK_SETTINGS = "epub:\n  page_list: false\n"


# Python starting and importing the libraries an EPUB build cannot do without (the CLI, YAML
# settings, Markdown, templates, the EPUB package), and nothing else.
FLOOR_IMPORTS = "import click, yaml, markdown_it, jinja2, lxml.etree, ebooklib.epub"


def bench_pandoc(tmp: Path, copies: Copies, results: dict) -> None:
    """EPUB vs Pandoc on equal work: both build only the demo's article, whole processes."""
    pandoc = shutil.which("pandoc")
    if not pandoc:
        raise SystemExit("bench: pandoc is not installed; the EPUB comparison needs it:\n"
                         "  sudo apt-get install pandoc")
    version = subprocess.run([pandoc, "--version"], capture_output=True, text=True).stdout
    source = demo_source(tmp / "article-source")
    content = source / "content"
    for folder in ("exercises", "routines", "newsletters"):
        for md in (content / folder).glob("*.md"):
            md.unlink()
    with (content / "publication.yaml").open("a", encoding="utf-8") as fh:
        fh.write(EQUAL_WORK_SETTINGS)
    article = content / "articles/facial-yoga-symmetry.md"
    title, body = strip_front_matter(article.read_text())
    md = tmp / "pandoc-article.md"
    md.write_text(body)
    words = len(body.split())
    warm = copies(source)
    run_build(warm, "--format", "epub")

    def run_pandoc() -> None:
        subprocess.run([pandoc, "--quiet", "-f", "markdown", "-t", "epub3", "-o",
                        str(tmp / "pandoc.epub"), "--metadata", f"title={title}",
                        "--metadata", "lang=en-GB", "--resource-path", str(content), str(md)],
                       check=True)

    def ours_warm() -> float:
        return run_build(warm, "--format", "epub")["wall_s"]

    def imports_only() -> None:  # no Pressroom code: the floor any Python EPUB build pays
        subprocess.run([PY, "-c", FLOOR_IMPORTS], check=True)

    runs = alternate(ROUNDS, {"pressroom_cold": copies.cold(source, "--format", "epub"),
                              "pressroom_warm": ours_warm, "pandoc": run_pandoc,
                              "python_imports": imports_only})
    p = runs["pandoc"]["median"]
    results["epub_vs_pandoc"] = {
        "work": "the demo article only (front matter stripped for Pandoc, title as metadata); "
                "Pressroom builds a project holding just that article",
        "words": words, "pandoc_version": version.splitlines()[0], **runs,
        "ratio_cold": round(runs["pressroom_cold"]["median"] / p, 2),
        "floor_imports": FLOOR_IMPORTS,
        "ratio_floor": round(runs["python_imports"]["median"] / p, 2),
        "ratio_warm": round(runs["pressroom_warm"]["median"] / p, 2)}


def bench_pdf_overhead(tmp: Path, results: dict) -> None:
    """The handout's PDF step as a build runs it, against raw WeasyPrint on the whole
    handout's HTML, in this process, from an empty derived-file cache each run: with the
    exercise cards drawn in a forked process beside the rest (what a build does), and with
    both halves drawn here one after the other (the CPU the step costs)."""
    import weasyprint

    from pressroom.config import load_config
    from pressroom.content import load_publication
    from pressroom.render.pdf import handout_html, handout_pdf
    from pressroom.theme import load_theme

    project = demo_source(tmp / "pdf-step")
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    html = handout_html(pub, theme, config.paper, False)
    pdf = {}

    def ours(fork: bool) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(project / ".pressroom", ignore_errors=True)  # not timed
            start = time.perf_counter()
            handout_pdf(pub, theme, "handout", fork=fork)
            return time.perf_counter() - start
        return run

    def raw() -> None:
        pdf["bytes"] = weasyprint.HTML(string=html, base_url=str(config.content_dir) + "/"
                                       ).write_pdf(pdf_variant="pdf/ua-1")

    raw()  # warm caches (fonts) for both
    runs = alternate(ROUNDS, {"raw_weasyprint": raw, "pressroom": ours(True),
                              "pressroom_one_core": ours(False)})
    path = Path(tempfile.mkstemp(suffix=".pdf")[1])
    path.write_bytes(pdf["bytes"])
    pages = pdf_pages(path)
    path.unlink()
    raw_s = runs["raw_weasyprint"]["median"]
    results["pdf_overhead"] = {**runs, "pages": pages,
                               "ratio": round(runs["pressroom"]["median"] / raw_s, 3),
                               "ratio_one_core": round(
                                   runs["pressroom_one_core"]["median"] / raw_s, 3),
                               "raw_s_per_page": round(raw_s / pages, 3)}


def bench_email(results: dict) -> None:
    """MJML render per issue, in this process."""
    from pressroom.config import load_config
    from pressroom.content import load_publication
    from pressroom.render.email import EmailRenderer
    from pressroom.theme import load_theme

    config = load_config(ROOT)
    pub = load_publication(config)
    renderer = EmailRenderer(pub, load_theme(config))
    runs = alternate(ROUNDS, {i.slug: (lambda i=i: renderer.html(i) and None)
                              for i in pub.newsletters})
    results["email"] = {"render_ms_per_issue": {k: round(v["median"] * 1000, 1)
                                                for k, v in runs.items()}}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sink(port: int) -> subprocess.Popen:
    """An SMTP sink in its own process (aiosmtpd's Sink handler), so it doesn't share our GIL."""
    import socket

    proc = subprocess.Popen([PY, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the SMTP sink did not start")


def _send_project(tmp: Path, name: str, port: int, recipients: int) -> Path:
    project = demo_source(tmp / name)
    cfg = project / "content/publication.yaml"
    cfg.write_text(cfg.read_text() + f"""
mail:
  store: .pressroom/bench.sqlite3
  retry_backoff: 0.01
smtp:
  host: 127.0.0.1
  port: {port}
  security: none
""")
    run_build(project, "--format", "email")
    csv = tmp / f"{name}.csv"
    with csv.open("w") as fh:
        fh.write("email,first_name,last_name,tags\n")
        for i in range(recipients):
            fh.write(f"reader{i}@example.com,Reader{i},Bench,\n")
    subprocess.run([PY, "-m", "pressroom", "subscribers", "import", str(csv), "--project",
                    str(project)], check=True, capture_output=True)
    return project


def _send(project: Path, issue: str) -> dict:
    proc = subprocess.run([PY, "-c", CHILD, "send", issue, "--project", str(project),
                           "--skip-doctor"],  # no DNS here: the checks would fail
                          capture_output=True, text=True)
    if "@@BENCH@@" not in proc.stderr:
        raise SystemExit(f"send failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stderr.split("@@BENCH@@")[1].splitlines()[0])


def bench_sending(tmp: Path, results: dict) -> None:
    """Per-recipient messages through send's own Renderer; the ledger against bare smtplib."""
    import smtplib

    os.environ.setdefault("PRESSROOM_SECRET_KEY", "bench-only-secret-key-0123456789abcdef")
    from pressroom.config import load_config
    from pressroom.mail.campaign import Renderer
    from pressroom.mail.message import load_built
    from pressroom.mail.settings import mail_settings, secret_key, smtp_settings

    issue, n = "02-exercise-of-the-week", 300
    port = _free_port()
    sink = _sink(port)
    try:
        template = _send_project(tmp, "send-template", port, n)
        config = load_config(template)
        settings, smtp = mail_settings(config), smtp_settings(config)
        dkim = smtp.dkim if smtp else None  # as send_campaign does
        renderer = Renderer(settings, load_built(config.out, issue), dkim, secret_key())
        data = renderer.render(1, "reader1@example.com", "Reader1", "Bench").data

        def personalise() -> None:
            for i in range(n):
                renderer.render(i, f"reader{i}@example.com", f"Reader{i}", "Bench")

        def ledger() -> float:
            project = tmp / "send-round"
            shutil.rmtree(project, ignore_errors=True)
            shutil.copytree(template, project)  # the same subscribers, an empty ledger
            took = _send(project, issue)["seconds"]
            shutil.rmtree(project)
            return took

        def bare() -> None:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for i in range(n):
                    smtp.sendmail("newsletter@juvenology.co.uk", [f"reader{i}@example.com"], data)

        runs = alternate(ROUNDS, {"personalise": personalise, "ledger": ledger, "bare": bare})
        memory = {}
        for count in (300, 3000):
            big = _send_project(tmp, f"send-{count}", port, count)
            memory[f"{count:,}"] = round(_send(big, "01-welcome")["peak_mb"], 1)
    finally:
        sink.terminate()
        sink.wait()
    rate = {k: round(n / runs[k]["median"], 1) for k in runs}
    results["sending"] = {
        "recipients": n, "dkim": dkim is not None, **runs,
        "personalise_per_s": rate["personalise"], "ledger_per_s": rate["ledger"],
        "bare_per_s": rate["bare"], "ratio": round(rate["ledger"] / rate["bare"], 3),
        "peak_mb_by_recipients": memory}


def s(entry: dict, unit: str = " s") -> str:
    """A median with its min-max."""
    return f"{entry['median']:.2f}{unit} ({entry['min']:.2f}–{entry['max']:.2f})"


def table(results: dict) -> str:
    d, lg, st = results["demo"], results["large"], results["startup"]
    ep, po, sd = results["epub_vs_pandoc"], results["pdf_overhead"], results["sending"]
    cf, af = d["cold_by_format"], d["all_formats"]
    vo, ec = results["vs_old"], results["epubcheck_cost"]
    sh = d["share_of_cold"]
    rows = [
        ("EPUB of the article, cold: Pressroom / Pandoc",
         f"{s(ep['pressroom_cold'])} / {s(ep['pandoc'])} = **{ep['ratio_cold']:.2f}×**"),
        ("… Python importing only the libraries an EPUB build needs / Pandoc",
         f"{s(ep['python_imports'])} / {s(ep['pandoc'])} = {ep['ratio_floor']:.2f}×"),
        ("EPUB of the article, warm: Pressroom / Pandoc",
         f"{s(ep['pressroom_warm'])} / {s(ep['pandoc'])} = **{ep['ratio_warm']:.2f}×**"),
        ("Demo, cold: EPUB / PDF / email", " / ".join(s(cf[k]) for k in ("epub", "pdf", "email"))),
        ("Demo, cold, all formats; peak memory",
         f"{s(af['cold'])}; {d['peak_mb_cold']:.0f} MB"),
        (f"Demo, cold, all formats: this commit / {vo['old_commit']}",
         f"{s(vo['new'])} / {s(vo['old'])} = **{vo['ratio']:.0%}**"),
        ("Demo, cold, `make build`'s build: with EPUBCheck (JVM kept) / without",
         f"{s(ec['with_epubcheck'])} / {s(ec['without'])} (**+{ec['added_s']:.2f} s**)"),
        ("… with EPUBCheck, no JVM kept (the build starts one)",
         f"{s(ec['jvm_started'])} (+{ec['added_started_s']:.2f} s)"),
        ("… with EPUBCheck, first build on a machine (also compiles its driver)",
         f"{s(ec['first_on_machine'])} (+{ec['added_first_s']:.2f} s)"),
        ("Demo rebuild, no change (share of cold)", f"{s(af['noop'])} ({sh['noop']:.0%})"),
        ("Demo rebuild, one exercise edited", f"{s(af['edit_exercise'])} "
                                              f"({sh['edit_exercise']:.0%})"),
        ("Demo rebuild, one newsletter edited", f"{s(af['edit_newsletter'])} "
                                                f"({sh['edit_newsletter']:.0%})"),
        (f"Handout PDF ({po['pages']} pages): raw WeasyPrint / Pressroom step",
         f"{s(po['raw_weasyprint'])} / {s(po['pressroom'])} ({po['ratio']:.2f}×); "
         f"{po['raw_s_per_page']:.2f} s a page"),
        ("… the Pressroom step on one core (both halves in turn)",
         f"{s(po['pressroom_one_core'])} ({po['ratio_one_core']:.2f}×)"),
        ("Cold, all formats: small project / 3× its content",
         f"{s(lg['cold_all']['small'])} / {s(lg['cold_all']['big'])} "
         f"({lg['growth_3x']:.2f}×); at 3×: {lg['big_handout_pages']} handout pages, "
         f"{lg['peak_mb_big']:.0f} MB peak"),
        ("`pressroom --help` / `pressroom check`", f"{s(st['help_s'])} / {s(st['check_s'])}"),
        ("MJML render per issue",
         ", ".join(f"{v} ms" for v in results["email"]["render_ms_per_issue"].values())),
        (f"Per-recipient message (send's Renderer), {sd['recipients']:,} messages",
         f"{s(sd['personalise'])} = {sd['personalise_per_s']:,.0f} messages/s"),
        ("Sending to a local SMTP sink: ledger / bare smtplib",
         f"{sd['ledger_per_s']:.0f} / {sd['bare_per_s']:.0f} msg/s ({sd['ratio']:.2f}×)"),
        ("Sending peak memory by recipients",
         ", ".join(f"{k}: {v:.0f} MB" for k, v in sd["peak_mb_by_recipients"].items())),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'measure'.ljust(width)} | median (min–max) |", f"|{'-' * (width + 2)}|---|"]
    lines += [f"| {a.ljust(width)} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    results: dict = {"commit": commit + ("+src-changes" if dirty else ""), "rounds": ROUNDS,
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}}
    if not shutil.which("pandoc"):
        raise SystemExit("bench: pandoc is not installed; the EPUB comparison needs it:\n"
                         "  sudo apt-get install pandoc")
    began = time.perf_counter()
    compiled(ROOT / "src")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        copies = Copies(tmp)
        steps = [("EPUB vs Pandoc", lambda: bench_pandoc(tmp, copies, results)),
                 ("demo builds", lambda: bench_demo(tmp, copies, results)),
                 ("vs " + OLD_COMMIT, lambda: bench_vs_old(tmp, copies, results)),
                 ("EPUBCheck cost", lambda: bench_validation(tmp, copies, results)),
                 ("start-up", lambda: bench_startup(results)),
                 ("large project", lambda: bench_large(tmp, copies, results)),
                 ("PDF overhead", lambda: bench_pdf_overhead(tmp, results)),
                 ("email", lambda: bench_email(results)),
                 ("sending", lambda: bench_sending(tmp, results))]
        for name, step in steps:
            print(f"bench: {name}… ({time.perf_counter() - began:.0f} s)", file=sys.stderr,
                  flush=True)
            step()
    results["bench_wall_s"] = round(time.perf_counter() - began, 1)
    out = ROOT / "output"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\ncommit {results['commit']}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, {ROUNDS} rounds; bench took {results['bench_wall_s']} s")
    print(f"written: {out / 'bench.json'}")


if __name__ == "__main__":
    main()
