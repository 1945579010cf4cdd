"""Several senders on one campaign: leased batches, expiry, in-flight rows of a dead sender,
and pacing and the hourly cap shared through the store (the ledger in lease mode, as on
PostgreSQL; SQLite's own runs hold the single-sender lock instead)."""

from __future__ import annotations

import pytest
from mailtest import add_subscribers, config_of, make_project

from pressroom.mail.ledger import TAKEN, Ledger
from pressroom.mail.pacing import Pacer, renew
from pressroom.mail.settings import Relay, mail_settings
from pressroom.mail.store import open_store

ISSUE = "01-welcome"
LEASE = 60.0


@pytest.fixture
def store(tmp_path):
    project = make_project(tmp_path)
    add_subscribers(project, 10)
    with open_store(mail_settings(config_of(project)).store) as opened:
        yield opened


def sender(store) -> Ledger:
    """One sender's view of the campaign, coordinating by leases (as on PostgreSQL)."""
    ledger = Ledger.open(store, ISSUE, "Subject", None)
    ledger.exclusive = False
    return ledger


def statuses(store) -> dict[int, str]:
    return dict(store.db.execute("SELECT subscriber_id, status FROM deliveries"))


def test_two_senders_claim_disjoint_batches(store):
    first, second = sender(store), sender(store)
    a = [row.subscriber_id for row in first.claim_batch(1000.0, LEASE, limit=4)]
    b = [row.subscriber_id for row in second.claim_batch(1000.0, LEASE, limit=100)]
    assert a == [1, 2, 3, 4] and b == [5, 6, 7, 8, 9, 10]
    assert sender(store).claim_batch(1000.0, LEASE) == []  # a third finds nothing free
    # A sender's own leased rows stay its own (e.g. a deferred one, due again).
    assert [row.subscriber_id for row in first.claim_batch(1000.0, LEASE)] == [1, 2, 3, 4]
    assert second.others_busy(1000.0) == 1000.0 + LEASE


def test_a_dead_senders_claimed_rows_return_after_the_lease(store):
    dead, alive = sender(store), sender(store)
    dead.claim_batch(1000.0, LEASE, limit=3)
    early = alive.claim_batch(1000.0 + LEASE - 1, LEASE, limit=2)
    assert [r.subscriber_id for r in early] == [4, 5]
    taken = [r.subscriber_id for r in alive.claim_batch(1000.0 + LEASE + 1, LEASE, limit=5)]
    assert taken == [1, 2, 3, 4, 5]  # the dead one's rows, and its own still unfinished


def test_renewal_keeps_rows_from_other_senders(store):
    first, second = sender(store), sender(store)
    first.claim_batch(1000.0, LEASE, limit=3)
    renew(store, first, 1000.0 + 3 * LEASE)
    assert [r.subscriber_id for r in second.claim_batch(1000.0 + 2 * LEASE, LEASE,
                                                        limit=3)] == [4, 5, 6]


def test_in_flight_rows_of_a_dead_sender_become_unknown_only_after_its_lease(store):
    dead, alive = sender(store), sender(store)
    dead.claim_batch(1000.0, LEASE, limit=2)
    assert dead.claim(1) is None  # 'sending' committed before DATA; then the sender dies
    assert statuses(store)[1] == "sending"
    assert alive.stale_to_unknown(1000.0 + LEASE - 1) == 0
    assert alive.stale_to_unknown(1000.0 + LEASE + 1) == 1
    assert statuses(store)[1] == "unknown"
    # Its claimed-but-unstarted row went back to the queue, not to unknown.
    assert statuses(store)[2] == "pending"
    assert [r.subscriber_id for r in alive.claim_batch(1000.0 + LEASE + 1, LEASE, limit=1)] == [2]


def test_rows_a_dead_sender_leased_behind_a_sweep_are_due_again(store):
    """A sender whose sweep went past the rows another one leased sees, once that lease runs
    out, nobody busy any more, yet those rows still due: it must sweep again, not finish (a
    sender that finished then left them 'pending', and the in-flight one 'sending')."""
    dead, alive = sender(store), sender(store)
    dead.claim_batch(1000.0, LEASE, limit=3)
    assert dead.claim(1) is None  # row 1 in flight; then the sender dies
    swept = [r.subscriber_id for r in alive.claim_batch(1000.0, LEASE)]
    assert swept == list(range(4, 11))
    store.db.execute("UPDATE deliveries SET status = 'sent' WHERE subscriber_id >= 4")
    assert alive.others_busy(1000.0 + LEASE - 1) == 1000.0 + LEASE
    assert not alive.claimable(1000.0 + LEASE - 1)
    later = 1000.0 + LEASE + 1
    assert alive.others_busy(later) is None  # all a sender used to check before finishing
    assert alive.claimable(later)
    assert alive.stale_to_unknown(later) == 1
    assert [r.subscriber_id for r in alive.claim_batch(later, LEASE)] == [2, 3]


def test_a_sender_whose_lease_was_taken_over_does_not_send(store):
    slow, other = sender(store), sender(store)
    slow.claim_batch(1000.0, LEASE, limit=1)
    other.claim_batch(1000.0 + LEASE + 1, LEASE, limit=1)  # the slow one's lease ran out
    assert slow.claim(1) == TAKEN
    assert other.claim(1) is None
    assert statuses(store)[1] == "sending"


def test_the_sqlite_lock_holder_takes_every_row_and_reports_every_stale_one(store):
    crashed = sender(store)
    crashed.claim_batch(1000.0, LEASE, limit=2)
    crashed.claim(1)
    alone = Ledger.open(store, ISSUE, "Subject", None)  # exclusive: it holds the send lock
    assert alone.stale_to_unknown(1000.0) == 1
    assert [r.subscriber_id for r in alone.claim_batch(1000.0, LEASE)] == list(range(2, 11))


def test_the_rate_is_shared_by_every_sender(store):
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    pacers = [Pacer(sender(store), 2.0, None, lambda: now[0], sleep) for _ in range(2)]
    for i in range(4):
        pacers[i % 2].wait(i + 1)  # the clock stands still: each slot is 0.5 s after the last
    assert sleeps == [0.5, 1.0, 1.5]


def test_the_hourly_cap_counts_every_senders_slots(store):
    now = [1000.0]
    sleeps: list[float] = []
    pacers = [Pacer(sender(store), None, 3, lambda: now[0], sleeps.append) for _ in range(2)]
    pacers[0].wait(1)
    now[0] += 10
    pacers[1].wait(2)
    pacers[0].wait(3)
    assert sleeps == []
    pacers[1].wait(4)  # the fourth slot in the hour: wait until the first one is an hour old
    assert sleeps == [pytest.approx(3600 - 10)]


def test_a_relays_connections_are_shared_by_every_sender(store):
    limited = Relay("relay.example.com", 587, connections=1)
    first, second = (Pacer(sender(store), None, None, lambda: 1000.0) for _ in range(2))
    assert first.acquire(limited) and first.acquire(limited)  # its own slot, again
    assert not second.acquire(limited)
    first.release(limited)
    assert second.acquire(limited)
    assert Pacer(sender(store), None, None, lambda: 1000.0 + 61).acquire(limited)  # expired
