"""`make bench`: measure the whole pipeline on this machine and write output/bench.json.

A script, not a test: timings are noisy, so the table reports ratios measured in one run.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")

CHILD = r"""
import json, resource, sys, time
from pressroom.cli import cli
t = time.perf_counter()
try:
    cli.main(args=sys.argv[1:], prog_name="pressroom", standalone_mode=False)
except SystemExit:
    pass
took = time.perf_counter() - t
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print("@@BENCH@@" + json.dumps({"seconds": took, "peak_mb": rss / 1024}), file=sys.stderr)
"""


def run_build(project: Path, out: Path, *args: str) -> dict:
    """One `pressroom build` in a fresh process: wall time (whole process) and peak memory."""
    cmd = [PY, "-c", CHILD, "build", "--project", str(project), "--out", str(out),
           "--no-validate", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or "@@BENCH@@" not in proc.stderr:
        raise SystemExit(f"build failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stderr.split("@@BENCH@@")[1].splitlines()[0])
    return {"wall_s": round(wall, 3), "peak_mb": round(data["peak_mb"], 1)}


def fresh(tmp: Path, name: str) -> Path:
    path = tmp / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def copy_demo(dest: Path) -> Path:
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
    return int(m.group(1)) if m else -1


def best_of(n: int, fn) -> float:
    return best_alternating(n, fn)[0]


def best_alternating(rounds: int, *fns) -> list[float]:
    """Each function's best wall time, running them in turn every round, so that drift in the
    machine's speed hits the compared runs alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for spent, fn in zip(times, fns):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def bench_demo(tmp: Path, results: dict) -> None:
    project = copy_demo(tmp / "demo")
    demo = results["demo"] = {}
    for fmt in ("epub", "pdf", "email"):
        demo[f"cold_{fmt}"] = run_build(project, fresh(tmp, f"out-{fmt}"), "--format", fmt)
    out = fresh(tmp, "out-all")
    demo["cold_total"] = run_build(project, out)
    demo["noop"] = run_build(project, out)
    ex = project / "content/exercises/cheek-lift.md"
    ex.write_text(ex.read_text().replace("Clenching the teeth", "Clenching the teeth hard"))
    demo["edit_exercise"] = run_build(project, out)
    nl = project / "content/newsletters/03-symmetry-self-check.md"
    nl.write_text(nl.read_text() + "\nOne more line.\n")
    demo["edit_newsletter"] = run_build(project, out)
    cold = demo["cold_total"]["wall_s"]
    demo["ratios"] = {
        k: round(demo[k]["wall_s"] / cold, 3) for k in ("noop", "edit_exercise", "edit_newsletter")
    }


def bench_large(tmp: Path, results: dict) -> None:
    large = results["large"] = {}
    small = synthetic(tmp / "small", 2, 20, 2)
    big = synthetic(tmp / "big", 20, 200, 20)
    for label, project in (("small", small), ("big", big)):
        entry = large[label] = {}
        for fmt in ("epub", "pdf", "email"):
            entry[fmt] = run_build(project, fresh(tmp, f"{label}-{fmt}"), "--format", fmt)
        out = fresh(tmp, f"{label}-all")
        entry["total"] = run_build(project, out)
        entry["handout_pages"] = pdf_pages(out / "facial-yoga-handout.pdf")
    large["growth_10x"] = round(
        large["big"]["total"]["wall_s"] / large["small"]["total"]["wall_s"], 2
    )
    large["peak_mb_big"] = max(v["peak_mb"] for k, v in large["big"].items() if isinstance(v, dict))
    results["_big_project"] = str(big)


def bench_pandoc(tmp: Path, results: dict) -> None:
    pandoc = shutil.which("pandoc")
    big = Path(results["_big_project"])
    files = sorted((big / "content/articles").glob("*.md")) + sorted(
        (big / "content/exercises").glob("*.md")
    )
    words = sum(len(f.read_text().split()) for f in files)
    # The asset cache (cover PNG) is warm here: bench_large built this project already. The
    # first-ever build also rasterises the cover (~0.5 s); both are reported.
    shutil.rmtree(big / ".pressroom", ignore_errors=True)
    first = run_build(big, fresh(tmp, "pandoc-ours-first"), "--format", "epub")["wall_s"]
    entry = results["epub_vs_pandoc"] = {"words": words, "pressroom_first_run_s": first}

    def ours():
        run_build(big, fresh(tmp, "pandoc-ours"), "--format", "epub")

    def run_pandoc():
        subprocess.run([pandoc, "--quiet", "-f", "markdown", "-o", str(tmp / "pandoc.epub"),
                        "--resource-path", str(big / "content"), *map(str, files)], check=True)

    if not pandoc:
        entry["pressroom_s"] = round(best_of(3, ours), 3)
        entry["pandoc_s"] = None
        entry["note"] = "pandoc not installed (apt-get install pandoc)"
        return
    mine, theirs = best_alternating(3, ours, run_pandoc)
    entry["pressroom_s"], entry["pandoc_s"] = round(mine, 3), round(theirs, 3)
    entry["speedup"] = round(theirs / mine, 2)
    entry["speedup_first_run"] = round(theirs / first, 2)


def bench_pdf_overhead(results: dict) -> None:
    import weasyprint

    from pressroom.config import load_config
    from pressroom.content import load_publication
    from pressroom.render.pdf import handout_html, html_to_pdf
    from pressroom.theme import load_theme

    config = load_config(ROOT)
    pub, theme = load_publication(config), load_theme(config)
    html = handout_html(pub, theme, config.paper, False)

    def ours():
        html_to_pdf(handout_html(pub, theme, config.paper, False), pub, theme, "handout")

    def raw():
        weasyprint.HTML(string=html, base_url=str(config.content_dir) + "/").write_pdf(
            pdf_variant="pdf/ua-1"
        )

    raw()  # warm caches (fonts) for both
    r, o = best_alternating(5, raw, ours)
    results["pdf_overhead"] = {"raw_weasyprint_s": round(r, 3), "pressroom_s": round(o, 3),
                               "ratio": round(o / r, 3)}


def bench_email(results: dict) -> None:
    from pressroom import mergefields
    from pressroom.config import load_config
    from pressroom.content import load_publication
    from pressroom.render.email import EmailRenderer
    from pressroom.theme import load_theme

    config = load_config(ROOT)
    pub = load_publication(config)
    renderer = EmailRenderer(pub, load_theme(config))
    per_issue = {
        i.slug: round(best_of(5, lambda i=i: renderer.html(i)) * 1000, 1) for i in pub.newsletters
    }
    html = renderer.html(pub.newsletters[0])
    text = renderer.text(pub.newsletters[0])
    n = 20000
    start = time.perf_counter()
    for k in range(n):
        mergefields.personalise_html(html, first_name=f"Name{k}", fallback="there",
                               unsubscribe_url=f"https://x.example/u?t={k}", view_url="https://x.example/v")
        mergefields.personalise_text(text, first_name=f"Name{k}", fallback="there",
                               unsubscribe_url=f"https://x.example/u?t={k}", view_url="https://x.example/v")
    rate = n / (time.perf_counter() - start)
    results["email"] = {"render_ms_per_issue": per_issue, "personalise_per_s": round(rate)}


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
    project = copy_demo(tmp / name)
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
    run_build(project, project / "output", "--format", "email")
    csv = tmp / f"{name}.csv"
    with csv.open("w") as fh:
        fh.write("email,first_name,last_name,tags\n")
        for i in range(recipients):
            fh.write(f"reader{i}@example.com,Reader{i},Bench,\n")
    subprocess.run([PY, "-m", "pressroom", "subscribers", "import", str(csv), "--project",
                    str(project)], check=True, capture_output=True)
    return project


def _send(project: Path, issue: str) -> dict:
    proc = subprocess.run([PY, "-c", CHILD, "send", issue, "--project", str(project)],
                          capture_output=True, text=True)
    if "@@BENCH@@" not in proc.stderr:
        raise SystemExit(f"send failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stderr.split("@@BENCH@@")[1].splitlines()[0])


def bench_sending(tmp: Path, results: dict) -> None:
    import smtplib

    os.environ.setdefault("PRESSROOM_SECRET_KEY", "bench-only-secret-key-0123456789abcdef")
    port = _free_port()
    sink = _sink(port)
    try:
        n = 2000
        project = _send_project(tmp, "send", port, n)
        ledger = _send(project, "02-exercise-of-the-week")
        from pressroom.config import load_config
        from pressroom.mail.campaign import Renderer
        from pressroom.mail.message import load_built
        from pressroom.mail.settings import mail_settings, secret_key

        config = load_config(project)
        renderer = Renderer(
            mail_settings(config),
            load_built(config.out, "02-exercise-of-the-week"),
            None,
            secret_key(),
        )
        data = renderer.render(1, "reader1@example.com", "Reader1", "Bench").data
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for i in range(n):
                smtp.sendmail("newsletter@juvenology.co.uk", [f"reader{i}@example.com"], data)
        bare = n / (time.perf_counter() - start)
        memory = {}
        for count in (1000, 100000):
            big = _send_project(tmp, f"send-{count}", port, count)
            memory[f"{count:,}"] = round(_send(big, "01-welcome")["peak_mb"], 1)
    finally:
        sink.terminate()
        sink.wait()
    per_s = n / ledger["seconds"]
    results["sending"] = {"recipients": n, "ledger_per_s": round(per_s, 1),
                          "bare_per_s": round(bare, 1), "ratio": round(per_s / bare, 3),
                          "peak_mb_by_recipients": memory}


def bench_startup(results: dict) -> None:
    """`pressroom --help` and `pressroom check` in a fresh process (best of 5)."""
    script = str(Path(PY).parent / "pressroom")
    def run(*args):
        subprocess.run([script, *args], check=True, capture_output=True)
    results["startup"] = {
        "help_s": round(best_of(5, lambda: run("--help")), 3),
        "check_s": round(best_of(5, lambda: run("check", "--project", str(ROOT))), 3),
    }


def table(results: dict) -> str:
    d, lg = results["demo"], results["large"]
    st = results["startup"]
    rows = [
        (
            "`pressroom --help` / `pressroom check` (demo)",
            f"{st['help_s']:.2f} s / {st['check_s']:.2f} s",
        ),
        (
            "Demo cold build: EPUB / PDF / email / all",
            " / ".join(
                f"{d[k]['wall_s']:.2f} s"
                for k in ("cold_epub", "cold_pdf", "cold_email", "cold_total")
            ),
        ),
        ("Demo peak memory (all formats)", f"{d['cold_total']['peak_mb']:.0f} MB"),
        (
            "No-op rebuild (share of cold)",
            f"{d['noop']['wall_s']:.2f} s ({d['ratios']['noop']:.0%})",
        ),
        (
            "Rebuild after editing one exercise",
            f"{d['edit_exercise']['wall_s']:.2f} s ({d['ratios']['edit_exercise']:.0%})",
        ),
        (
            "Rebuild after editing one newsletter",
            f"{d['edit_newsletter']['wall_s']:.2f} s ({d['ratios']['edit_newsletter']:.0%})",
        ),
        (
            "Large project (20 art., 200 ex., 20 nl.): EPUB / PDF / email / all",
            " / ".join(
                f"{lg['big'][k]['wall_s']:.2f} s" for k in ("epub", "pdf", "email", "total")
            ),
        ),
        (
            "Large handout pages; peak memory",
            f"{lg['big']['handout_pages']} pages; {lg['peak_mb_big']:.0f} MB",
        ),
        ("Growth for 10x content (all formats)", f"{lg['growth_10x']:.2f}x"),
    ]
    ep = results["epub_vs_pandoc"]
    if ep.get("pandoc_s"):
        rows.append(
            (
                f"EPUB, whole process, {ep['words']:,} words: Pandoc / Pressroom",
                f"{ep['pandoc_s']:.2f} s / {ep['pressroom_s']:.2f} s ({ep['speedup']:.2f}x faster; "
                f"first run, cover not cached: {ep['pressroom_first_run_s']:.2f} s, "
                f"{ep['speedup_first_run']:.2f}x)",
            )
        )
    po = results["pdf_overhead"]
    rows.append(
        (
            "Handout PDF: raw WeasyPrint / Pressroom step",
            f"{po['raw_weasyprint_s']:.2f} s / {po['pressroom_s']:.2f} s ({po['ratio']:.2f}x)",
        )
    )
    em = results["email"]
    rows.append(
        ("MJML render per issue", ", ".join(f"{v} ms" for v in em["render_ms_per_issue"].values()))
    )
    rows.append(("Per-recipient personalisation", f"{em['personalise_per_s']:,} messages/s"))
    s = results.get("sending", {})
    if "ledger_per_s" in s:
        rows.append(("Sending to a local SMTP sink: ledger / bare smtplib",
                     f"{s['ledger_per_s']:.0f} / {s['bare_per_s']:.0f} msg/s ({s['ratio']:.2f}x)"))
    if "peak_mb_by_recipients" in s:
        rows.append(
            (
                "Sending peak memory by recipients",
                ", ".join(f"{k}: {v:.0f} MB" for k, v in s["peak_mb_by_recipients"].items()),
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'measure'.ljust(width)} | result |", f"|{'-' * (width + 2)}|--------|"]
    lines += [f"| {a.ljust(width)} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        steps = [("start-up", lambda: bench_startup(results)),
                 ("demo builds", lambda: bench_demo(tmp, results)),
                 ("large project", lambda: bench_large(tmp, results)),
                 ("EPUB vs Pandoc", lambda: bench_pandoc(tmp, results)),
                 ("PDF overhead", lambda: bench_pdf_overhead(results)),
                 ("email", lambda: bench_email(results)),
                 ("sending", lambda: bench_sending(tmp, results))]
        for name, step in steps:
            print(f"bench: {name}…", file=sys.stderr, flush=True)
            step()
    results.pop("_big_project", None)
    out = ROOT / "output"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten: {out / 'bench.json'}")


if __name__ == "__main__":
    main()
