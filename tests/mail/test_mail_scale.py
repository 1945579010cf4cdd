"""Crash tests at scale with real processes: senders killed with SIGKILL at a random point and
restarted, and a relay that starts refusing mid-run; the sinks run in their own processes
(scripts/smtp_sink.py) and answer at once, and the received set is checked against the ledger:
everyone exactly once, except the listed unknowns (at most once). On PostgreSQL three senders
share a campaign of 10,000; on SQLite one sender runs at a time (2,000 recipients)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stores
from mailtest import SECRET, config_of, make_project

from pressroom.mail.database import connect
from pressroom.mail.settings import mail_settings

ISSUE = "01-welcome"
RECIPIENTS = 2_000
SINK = Path(__file__).parents[2] / "scripts" / "smtp_sink.py"


class Sink:
    """scripts/smtp_sink.py in its own process; ``received()`` counts recipients it accepted."""

    def __init__(self, folder: Path, name: str, *args: str) -> None:
        self.record = folder / f"{name}.txt"
        self.proc = subprocess.Popen([sys.executable, str(SINK), "--record", str(self.record),
                                      *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    def received(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.record.exists():
            for address in self.record.read_text().split():
                counts[address] = counts.get(address, 0) + 1
        return counts

    def count(self) -> int:
        return self.record.stat().st_size // len("reader00000@example.com\n") \
            if self.record.exists() else 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture
def sinks(tmp_path):
    started: list[Sink] = []

    def start(name: str, *args: str) -> Sink:
        sink = Sink(tmp_path, name, *args)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


def relay(sink: Sink) -> dict:
    return {"host": "127.0.0.1", "port": sink.port, "security": "none", "timeout": 5}


def fill_store(project: Path, count: int) -> list[str]:
    """``count`` subscribed readers written straight into the store (one transaction)."""
    from pressroom.mail.store import open_store

    addresses = [f"reader{i:05d}@example.com" for i in range(count)]
    with open_store(mail_settings(config_of(project)).store) as store:
        with store.transaction():
            for address in addresses:
                store.insert(address, source="test")
    return addresses


def start_send(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PRESSROOM_SECRET_KEY": SECRET}
    return subprocess.Popen([sys.executable, "-m", "pressroom.mail", "send", ISSUE, "--project",
                             str(project), "--skip-doctor", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def ledger_rows(project: Path) -> dict[str, tuple[str, str]]:
    db = connect(mail_settings(config_of(project)).store)
    try:
        return {email: (status, relay) for email, status, relay in db.execute(
            "SELECT s.email, d.status, d.relay FROM deliveries d JOIN subscribers s "
            "ON s.id = d.subscriber_id")}
    finally:
        db.close()


def assert_exactly_once(received: dict[str, int], rows: dict[str, tuple[str, str]],
                        addresses: list[str]) -> None:
    unknown = {a for a, (status, _) in rows.items() if status == "unknown"}
    assert {status for status, _ in rows.values()} <= {"sent", "unknown"}
    assert len(rows) == len(addresses)
    for address in addresses:
        assert received.get(address, 0) in ({0, 1} if address in unknown else {1}), address


def test_sigkill_at_a_random_point_then_restart(tmp_path, sinks):
    sink = sinks("sink")
    project = make_project(tmp_path, relay(sink))
    addresses = fill_store(project, RECIPIENTS)
    at = random.Random(os.environ.get("PYTEST_SEED")).randrange(100, RECIPIENTS - 100)
    victim = start_send(project)
    deadline = time.monotonic() + 300
    while sink.count() < at:
        assert victim.poll() is None and time.monotonic() < deadline, "sender stopped early"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL

    out = finish(start_send(project))

    rows = ledger_rows(project)
    assert_exactly_once(sink.received(), rows, addresses)
    assert sum(status == "unknown" for status, _ in rows.values()) <= 1, out
    assert f"sent {sum(s == 'sent' for s, _ in rows.values())} " in out


def test_a_relay_failing_mid_run_loses_and_duplicates_nothing(tmp_path, sinks):
    failing = sinks("failing", "--fail-after", "500")
    backup = sinks("backup")
    project = make_project(tmp_path, {"relays": [relay(failing), relay(backup)]})
    addresses = fill_store(project, RECIPIENTS)

    out = finish(start_send(project))

    rows = ledger_rows(project)
    first, second = failing.received(), backup.received()
    assert len(first) == 500 and not set(first) & set(second)
    assert_exactly_once({**first, **second}, rows, addresses)
    assert all(status == "sent" for status, _ in rows.values())
    assert {rows[a][1] for a in first} == {f"127.0.0.1:{failing.port}"}
    assert {rows[a][1] for a in second} == {f"127.0.0.1:{backup.port}"}
    assert f"  accepted by 127.0.0.1:{backup.port}: 1500\n" in out


# -- PostgreSQL: several senders on one campaign ----------------------------------------------

@pytest.fixture
def pg_store(pg_cluster):
    """A fresh migrated PostgreSQL database, written into the projects' mail.store."""
    name = pg_cluster.fresh()
    stores.CURRENT = pg_cluster.url(name)
    try:
        yield stores.CURRENT
    finally:
        stores.CURRENT = None
        pg_cluster.drop(name)


def fill_pg(url: str, count: int) -> list[str]:
    """``count`` subscribed readers made with generate_series."""
    db = connect(url)
    try:
        with db.transaction():
            db.execute("INSERT INTO subscribers (email, email_key, status, consent_source, "
                       "consent_at, created_at, updated_at) SELECT format('reader%s@example.com',"
                       " lpad(i::text, 5, '0')), format('reader%s@example.com', lpad(i::text, 5, "
                       "'0')), 'subscribed', 'test', 'then', 'then', 'then' "
                       "FROM generate_series(0, ?) AS i", (count - 1,))
    finally:
        db.close()
    return [f"reader{i:05d}@example.com" for i in range(count)]


def paced_at(url: str) -> list[float]:
    db = connect(url)
    try:
        return [t for (t,) in db.execute("SELECT paced_at FROM deliveries")]
    finally:
        db.close()


def test_three_senders_on_postgresql_one_killed_at_random_then_restarted(tmp_path, sinks,
                                                                         pg_store):
    sink = sinks("sink")
    project = make_project(tmp_path, relay(sink), {"lease": 2})
    addresses = fill_pg(pg_store, 10_000)
    at = random.Random(os.environ.get("PYTEST_SEED")).randrange(500, 9_000)
    procs = [start_send(project) for _ in range(3)]
    deadline = time.monotonic() + 300
    while sink.count() < at:
        assert time.monotonic() < deadline and procs[0].poll() is None, "senders stopped"
        time.sleep(0.01)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate()
    assert procs[0].returncode == -signal.SIGKILL
    procs.append(start_send(project))  # restarted

    outputs = [finish(proc) for proc in procs[1:]]

    rows = ledger_rows(project)
    assert_exactly_once(sink.received(), rows, addresses)
    unknown = sum(status == "unknown" for status, _ in rows.values())
    assert unknown <= 1  # at most the one the killed sender had in flight
    sent = sum(status == "sent" for status, _ in rows.values())
    assert sent + unknown == 10_000
    # Each summary counts the whole campaign as it stood when that sender finished.
    reported = [int(re.search(r": sent (\d+) \(", out).group(1)) for out in outputs]
    assert max(reported) == sent, outputs


def test_two_senders_on_postgresql_share_the_campaign_and_the_rate(tmp_path, sinks, pg_store):
    sink = sinks("sink")
    project = make_project(tmp_path, {**relay(sink), "rate": 100})
    addresses = fill_pg(pg_store, 300)
    outputs = [finish(proc, 120) for proc in [start_send(project) for _ in range(2)]]
    assert sink.received() == dict.fromkeys(addresses, 1)
    this_run = [int(re.search(r": sent \d+ \((\d+) this run\)", out).group(1))
                for out in outputs]
    assert sum(this_run) == 300, outputs
    # One send slot per message for both senders together: never closer than 1/rate.
    slots = sorted(paced_at(pg_store))
    assert len(slots) == 300
    assert min(b - a for a, b in zip(slots, slots[1:])) >= 0.01 - 1e-6
