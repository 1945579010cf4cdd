"""`make bench` (scale part): senders against a relay 20 ms away, and memory by store size.

A script, not a test; it writes output/bench-scale.json and prints the README's "Running at
scale" table. What it measures:
- throughput of 1, 2 and 4 concurrent `pressroom send` processes on one campaign against an
  SMTP sink in its own process (scripts/smtp_sink.py) that answers each message after 20 ms, as
  a distant relay does; PostgreSQL store for 1/2/4 senders, SQLite for 1 (SQLite allows one
  sender at a time). Rate = messages between the sink's first and last acceptance / that time
  (process start-up excluded). Each setting runs BENCH_ROUNDS times (default 3), alternating;
  figures are medians with min-max; ratios are against one sender on the same backend;
- the same with a sink that answers at once, with the CPU each part used per message (senders,
  sink, PostgreSQL), to say what limits it on this machine;
- peak RSS of one sender on a synthetic store of 10,000 to 1,000,000 recipients (rows made with
  SQL), measured over its first messages (the audience snapshot included).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# BENCH_SCALE_MESSAGES, BENCH_SCALE_SIZES and BENCH_SCALE_MEMORY=0 only for trying it out.
MESSAGES = int(os.environ.get("BENCH_SCALE_MESSAGES", "600"))  # per throughput run
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SCALE_SIZES",
                                             "10000,100000,1000000").split(","))
ISSUE = "01-welcome"
FIXTURES = ROOT / "tests" / "mail" / "fixtures"
SECRET = "bench-only-secret-key-0123456789abcdef"
LINE = len("r0000000@bench.example\n")  # every address has this length: count = size // LINE
TICKS = os.sysconf("SC_CLK_TCK")


def stats(values: list[float], digits: int = 1) -> dict:
    """Median with min-max (and every value, in run order)."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values),
            "runs": [round(v, digits) for v in values]}


def cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds a running process used (and, with ``children``, the children it reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children
                                                else 0)
    return used / TICKS


class Sink:
    """scripts/smtp_sink.py in its own process, recording what it accepts."""

    def __init__(self, folder: Path, delay: float) -> None:
        self.record = folder / f"sink-{delay}.txt"
        self.record.write_text("")
        self.proc = subprocess.Popen([PY, str(ROOT / "scripts" / "smtp_sink.py"), "--delay",
                                      str(delay), "--record", str(self.record)],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])

    def count(self) -> int:
        return self.record.stat().st_size // LINE if self.record.exists() else 0

    def clear(self) -> None:
        self.record.write_text("")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self.proc.stdout.close()


class SqliteStore:
    """A store file; one sender at a time."""

    name, max_senders = "SQLite", 1

    def __init__(self, folder: Path) -> None:
        self.path = folder / "store.sqlite3"
        self.location = str(self.path)

    def sql(self, statements: list[str]) -> None:
        db = sqlite3.connect(self.path)
        try:
            for statement in statements:
                db.execute(statement)
            db.commit()
        finally:
            db.close()

    def fill(self, count: int) -> None:
        self.sql(["DELETE FROM deliveries", "DELETE FROM campaign_audiences",
                  "DELETE FROM campaigns", "DELETE FROM subscribers",
                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                  f"{count}) INSERT INTO subscribers (id, email, email_key, status, "
                  "consent_source, consent_at, created_at, updated_at) SELECT i, "
                  "printf('r%07d@bench.example', i), printf('r%07d@bench.example', i), "
                  "'subscribed', 'bench', 'then', 'then', 'then' FROM n"])

    def reset(self) -> None:
        self.sql(["DELETE FROM deliveries", "DELETE FROM campaign_audiences",
                  "DELETE FROM campaigns", "DELETE FROM send_pacing", "DELETE FROM relay_slots"])

    def server_cpu(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


class PostgresStore(SqliteStore):
    """A private PostgreSQL cluster on a Unix socket (as the postgres user when run as root)."""

    name, max_senders = "PostgreSQL", 4

    def __init__(self, folder: Path) -> None:
        import glob

        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.runas:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "--auth=trust", "--username=bench",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        # Durable commits, as in production (no fsync=off): the ledger's marks are the point.
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o",
                  f"-k {self.root} -c listen_addresses='' -c max_connections=50", "-l",
                  str(self.root / "log"), "-w", "start")
        self.location = f"postgresql://bench@/postgres?host={self.root}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.runas, str(self.bin / tool), *args], check=True,
                       capture_output=True, cwd=self.root)

    def sql(self, statements: list[str]) -> None:
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def fill(self, count: int) -> None:
        self.sql(["TRUNCATE deliveries, campaign_audiences, campaigns, subscribers CASCADE",
                  "INSERT INTO subscribers (id, email, email_key, status, consent_source, "
                  "consent_at, created_at, updated_at) SELECT i, format('r%s@bench.example', "
                  "lpad(i::text, 7, '0')), format('r%s@bench.example', lpad(i::text, 7, '0')), "
                  f"'subscribed', 'bench', 'then', 'then', 'then' FROM generate_series(1, {count}) "
                  "AS i", "VACUUM ANALYZE"])

    def reset(self) -> None:
        self.sql(["TRUNCATE deliveries, campaign_audiences, campaigns, send_pacing, relay_slots"])

    def server_cpu(self) -> float:
        pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        return cpu_of(pid, children=True)

    def close(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def project(folder: Path, store: str, port: int) -> Path:
    """The mail tests' fixture project, pointed at ``store`` and the sink."""
    dest = folder / "project"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(FIXTURES / "project", dest)
    shutil.copytree(FIXTURES / "newsletters", dest / "output" / "newsletters")
    with (dest / "content" / "publication.yaml").open("a", encoding="utf-8") as fh:
        fh.write(f"mail:\n  store: {json.dumps(store)}\n  retry_backoff: 0.01\n"
                 f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n")
    return dest


def migrate(project_dir: Path) -> None:
    """Create the schema (a dry run opens and migrates the store; `db upgrade` where it exists)."""
    env = {**os.environ, "PRESSROOM_SECRET_KEY": SECRET}
    upgrade = subprocess.run([PY, "-m", "pressroom", "db", "upgrade", "--project",
                              str(project_dir)], env=env, capture_output=True, text=True)
    if upgrade.returncode != 0:
        subprocess.run([PY, "-m", "pressroom.mail", "send", ISSUE, "--dry-run", "--project",
                        str(project_dir)], env=env, check=True, capture_output=True)


def senders(project_dir: Path, count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PRESSROOM_SECRET_KEY": SECRET}
    return [subprocess.Popen([PY, "-m", "pressroom.mail", "send", ISSUE, "--project",
                              str(project_dir), "--skip-doctor"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(count)]


def reap(proc: subprocess.Popen) -> tuple[int, float, float]:
    """Wait for one sender: (exit status, its peak RSS in MB, its CPU seconds)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise SystemExit(f"a sender failed ({proc.returncode}):\n{err}")
    return proc.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def throughput(store: SqliteStore, sink: Sink, project_dir: Path, count: int) -> dict:
    """One run: ``count`` senders share one campaign of MESSAGES recipients."""
    store.reset()
    sink.clear()
    sink_cpu, server_cpu = cpu_of(sink.proc.pid), store.server_cpu()
    procs = senders(project_dir, count)
    first = last = None
    deadline = time.monotonic() + 600
    while (done := sink.count()) < MESSAGES:
        if done and first is None:
            first = time.perf_counter()
        if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            break
        time.sleep(0.005)
    last = time.perf_counter()
    reaped = [reap(p) for p in procs]
    if sink.count() != MESSAGES:
        raise SystemExit(f"the sink received {sink.count()} messages, expected {MESSAGES}")
    sender_cpu = sum(r[2] for r in reaped)
    return {"rate": (MESSAGES - 1) / (last - (first or last)),
            "sender_cpu_ms": 1000 * sender_cpu / MESSAGES,
            "sink_cpu_ms": 1000 * (cpu_of(sink.proc.pid) - sink_cpu) / MESSAGES,
            "db_cpu_ms": 1000 * (store.server_cpu() - server_cpu) / MESSAGES,
            "wall_s": last - (first or last)}


def bench_throughput(tmp: Path, stores: list[SqliteStore], delay: float) -> dict:
    sink = Sink(tmp, delay)
    try:
        plan = []
        for store in stores:
            folder = tmp / f"{store.name}-{delay}"
            folder.mkdir(exist_ok=True)
            project_dir = project(folder, store.location, sink.port)
            migrate(project_dir)
            store.fill(MESSAGES)
            plan += [(store, project_dir, n) for n in (1, 2, 4) if n <= store.max_senders]
        runs: dict[str, list[dict]] = {}
        for _ in range(ROUNDS):  # alternate every setting within each round
            for store, project_dir, n in plan:
                runs.setdefault(f"{store.name}/{n}", []).append(
                    throughput(store, sink, project_dir, n))
    finally:
        sink.stop()
    out: dict = {}
    for key, results in runs.items():
        out[key] = {"rate": stats([r["rate"] for r in results]),
                    **{k: round(statistics.median(r[k] for r in results), 2)
                       for k in ("sender_cpu_ms", "sink_cpu_ms", "db_cpu_ms")}}
    for key, entry in out.items():
        one = out[key.split("/")[0] + "/1"]["rate"]["median"]
        entry["ratio"] = round(entry["rate"]["median"] / one, 2)
    return out


def peak_memory(tmp: Path, store: SqliteStore, size: int) -> float:
    """Peak RSS (MB) of one sender on a store of ``size`` recipients over its first 300
    messages (the audience snapshot of all ``size`` included)."""
    sink = Sink(tmp, 0.0)
    try:
        folder = tmp / f"mem-{store.name}"
        folder.mkdir(exist_ok=True)
        project_dir = project(folder, store.location, sink.port)
        migrate(project_dir)
        store.fill(size)
        (proc,) = senders(project_dir, 1)
        deadline = time.monotonic() + 900
        while sink.count() < 300 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        return round(reap(proc)[1], 1)
    finally:
        sink.stop()


def postgres_ready() -> bool:
    """True when this build's store accepts PostgreSQL URLs (psycopg installed)."""
    try:
        import psycopg  # noqa: F401

        import pressroom.mail.database  # noqa: F401
    except ImportError:
        return False
    return True


def table(results: dict) -> str:
    rows = ["| Setting | msg/s (median, min-max) | × one sender | CPU ms/msg: senders, sink, "
            "database |", "|---|---|---|---|"]
    for label, key in (("relay 20 ms away", "delay_20ms"), ("relay answering at once",
                                                             "no_delay")):
        for setting, entry in results[key].items():
            r = entry["rate"]
            backend, n = setting.split("/")
            rows.append(f"| {label}: {backend}, {n} sender{'s' if n != '1' else ''} | "
                        f"{r['median']:.1f} "
                        f"({r['min']:.1f}-{r['max']:.1f}) | {entry['ratio']:.2f}× | "
                        f"{entry['sender_cpu_ms']:.1f}, {entry['sink_cpu_ms']:.1f}, "
                        f"{entry['db_cpu_ms']:.1f} |")
    for backend, sizes in results["peak_mb"].items():
        cells = ", ".join(f"{int(size):,}: {mb} MB" for size, mb in sizes.items())
        rows.append(f"| peak RSS of one sender, {backend} | {cells} | | |")
    return "\n".join(rows)


def main() -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    results: dict = {"commit": commit, "rounds": ROUNDS, "messages": MESSAGES,
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_at_start": os.getloadavg()[0]}}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        stores: list[SqliteStore] = [SqliteStore(tmp)]
        if postgres_ready():
            stores.insert(0, PostgresStore(tmp))
        else:
            results["postgresql"] = "not measured: this build's store has no PostgreSQL support"
        try:
            for key, delay in (("delay_20ms", 0.02), ("no_delay", 0.0)):
                print(f"bench-scale: throughput, {key}… ({time.perf_counter() - began:.0f} s)",
                      file=sys.stderr, flush=True)
                results[key] = bench_throughput(tmp, stores, delay)
            results["peak_mb"] = {}
            for store in stores if os.environ.get("BENCH_SCALE_MEMORY", "1") == "1" else []:
                for size in SIZES:
                    print(f"bench-scale: memory, {store.name}, {size:,}… "
                          f"({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
                    results["peak_mb"].setdefault(store.name, {})[str(size)] = peak_memory(
                        tmp, store, size)
        finally:
            for store in stores:
                store.close()
    results["bench_wall_s"] = round(time.perf_counter() - began, 1)
    results["self_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = ROOT / "output"
    out.mkdir(exist_ok=True)
    (out / "bench-scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\ncommit {commit}, {os.cpu_count()} CPUs, {ROUNDS} rounds of {MESSAGES} messages, "
          f"load average at start {results['machine']['load_at_start']:.1f}; "
          f"took {results['bench_wall_s']} s")
    print(f"written: {out / 'bench-scale.json'}")


if __name__ == "__main__":
    main()
