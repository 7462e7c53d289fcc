"""Several replicas on one store: the leader lease and its fencing epoch, and the replicas seen.

The lease is one row, timed by the database's clock (never a machine's own). A replica takes it
when it is free or expired, and keeps it by renewing it before it ends:

    UPDATE leases SET holder = me, epoch = epoch + 1 (unless already mine), until = now() + ttl
    WHERE name = 'leader' AND (holder = me OR until < now()) RETURNING epoch

Each time the lease changes hands its epoch grows. The fleet-wide tasks run under
``Store.fenced(check_leader)``: each of their writes checks, in its own transaction, that the
lease is still held at that epoch, so a replica that lost the lease (paused, cut off from the
database) cannot act late, even if it does not know yet that it lost it.

Per-item work (each model's drift and quality check, each group of endpoints' collect, each
bucket of models' evaluation) is shared instead: every replica claims items for itself
(``claim_item``), works on each under a fence on its claims (``check_items``), and marks it done
(``finish_items``), which holds it for the task's interval; a claim whose replica died runs out
and another replica takes the item over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycled.store.core import Connection, Fenced, Store

LEADER = "leader"


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    epoch: int
    acquired_at: float | None
    renewed_at: float | None
    until: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "holder": self.holder, "epoch": self.epoch,
                "acquired_at": self.acquired_at, "renewed_at": self.renewed_at,
                "until": self.until}


@dataclass(frozen=True)
class Acquired:
    epoch: int
    taken_from: str  # the previous holder when the lease changed hands ("" if it was free)


def acquire(store: Store, holder: str, ttl: float) -> Acquired | None:
    """Take or renew the leader lease for ``ttl`` seconds; None when another replica holds it."""
    now = store.engine.now_sql
    with store.write(queue=False) as conn:
        before = conn.execute("SELECT holder, until, " + now + " FROM leases WHERE name = ?",
                              (LEADER,)).fetchone()
        row = conn.execute(
            "UPDATE leases SET "
            "epoch = CASE WHEN holder = ? THEN epoch ELSE epoch + 1 END, "
            f"acquired_at = CASE WHEN holder = ? THEN acquired_at ELSE {now} END, "
            f"holder = ?, renewed_at = {now}, until = {now} + ? "
            f"WHERE name = ? AND (holder = ? OR until < {now}) RETURNING epoch",
            (holder, holder, holder, ttl, LEADER, holder)).fetchone()
    if row is None:
        return None
    previous = before[0] if before is not None and before[0] != holder else ""
    # a holder whose lease had run out was taken over; one that released it was not
    taken = previous if previous and before is not None and before[1] > 0 else ""
    return Acquired(int(row[0]), taken)


def release(store: Store, holder: str) -> bool:
    """Give the lease up at once (a clean shutdown), so another replica need not wait it out."""
    with store.write(queue=False) as conn:
        cursor = conn.execute("UPDATE leases SET until = 0 WHERE name = ? AND holder = ?",
                              (LEADER, holder))
        return bool(cursor.rowcount)


def leases(store: Store) -> list[Lease]:
    with store.read() as conn:
        rows = conn.execute("SELECT name, holder, epoch, acquired_at, renewed_at, until "
                            "FROM leases ORDER BY name").fetchall()
    return [Lease(r[0], r[1], int(r[2]), r[3], r[4], float(r[5])) for r in rows]


@dataclass(frozen=True)
class Replica:
    holder: str
    replica: str
    host: str
    pid: int
    version: str
    started_at: float
    seen_at: float
    stopped_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {"holder": self.holder, "replica": self.replica, "host": self.host,
                "pid": self.pid, "version": self.version, "started_at": self.started_at,
                "seen_at": self.seen_at, "stopped_at": self.stopped_at}


def heartbeat(store: Store, replica: Replica) -> None:
    """Record that ``replica`` is alive now (database time)."""
    now = store.engine.now_sql
    with store.write(queue=False) as conn:
        conn.execute(
            "INSERT INTO replicas (holder, replica, host, pid, version, started_at, seen_at) "
            f"VALUES (?, ?, ?, ?, ?, {now}, {now}) ON CONFLICT (holder) DO UPDATE SET "
            f"seen_at = {now}, stopped_at = NULL",
            (replica.holder, replica.replica, replica.host, replica.pid, replica.version))


def stopped(store: Store, holder: str) -> None:
    with store.write(queue=False) as conn:
        conn.execute(f"UPDATE replicas SET stopped_at = {store.engine.now_sql} WHERE holder = ?",
                     (holder,))


def replicas(store: Store, *, seen_within: float | None = None) -> list[Replica]:
    """Replicas seen (within ``seen_within`` seconds of database time, if given), newest first."""
    sql = "SELECT * FROM replicas"
    params: tuple[Any, ...] = ()
    if seen_within is not None:
        sql += f" WHERE seen_at >= {store.engine.now_sql} - ? AND stopped_at IS NULL"
        params = (seen_within,)
    with store.read() as conn:
        rows = conn.execute(sql + " ORDER BY started_at DESC, holder", params).fetchall()
    return [Replica(r["holder"], r["replica"], r["host"], int(r["pid"]), r["version"],
                    r["started_at"], r["seen_at"], r["stopped_at"]) for r in rows]


def forget_replicas(store: Store, *, older_than: float) -> int:
    """Delete replicas not seen for ``older_than`` seconds (housekeeping)."""
    with store.write() as conn:
        return int(conn.execute(
            f"DELETE FROM replicas WHERE seen_at < {store.engine.now_sql} - ?",
            (older_than,)).rowcount)


def claims(store: Store) -> dict[str, int]:
    """Outbox deliveries claimed and not yet answered, per holder (claims still running)."""
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT claimed_by, COUNT(*) FROM deliveries WHERE claimed_by IS NOT NULL AND "
            f"claim_until >= {store.engine.now_sql} GROUP BY claimed_by").fetchall()
    return {r[0]: int(r[1]) for r in rows}


def check_leader(conn: Connection, holder: str, epoch: int, share: str = "") -> None:
    """Refuse (Fenced) unless ``holder`` still holds the leader lease at ``epoch``. ``share``
    (the engine's ``share_rows``) holds the lease row until the write commits: the lease's own
    writes do not queue behind the other writers, so a takeover waits for this write instead."""
    row = conn.execute("SELECT holder, epoch FROM leases WHERE name = ?" + share,
                       (LEADER,)).fetchone()
    if row is None or row[0] != holder or int(row[1]) != epoch:
        now_held = f"{row[0]} at epoch {row[1]}" if row is not None else "nobody"
        raise Fenced(f"{holder} lost the leader lease (epoch {epoch}; now held by {now_held}): "
                     f"write refused")


# --- per-item work: done once per interval across replicas ---------------------------------------


@dataclass(frozen=True)
class Claim:
    mine: bool
    taken_from: str = ""  # a holder whose claim ran out before it finished


def claim_item(store: Store, task: str, item: str, holder: str, ttl: float) -> Claim:
    """Claim ``item`` of ``task`` for ``ttl`` seconds of database time, unless another claim
    (running, or finished and still holding) has not run out."""
    now = store.engine.now_sql
    with store.write() as conn:
        before = conn.execute("SELECT holder, done_at FROM work_claims WHERE task = ? AND item = ?",
                              (task, item)).fetchone()
        row = conn.execute(
            "INSERT INTO work_claims (task, item, holder, claimed_at, until) "
            f"VALUES (?, ?, ?, {now}, {now} + ?) ON CONFLICT (task, item) DO UPDATE SET "
            "holder = excluded.holder, claimed_at = excluded.claimed_at, "
            f"until = excluded.until, done_at = NULL WHERE work_claims.until < {now} "
            "RETURNING holder", (task, item, holder, ttl)).fetchone()
    if row is None:
        return Claim(False)
    taken = before[0] if before is not None and before[1] is None and before[0] != holder else ""
    return Claim(True, taken)


def finish_items(store: Store, task: str, items: Sequence[str], holder: str, hold: float
                 ) -> None:
    """Mark the claimed items done, in one transaction; no replica takes them again for
    ``hold`` seconds after each claim began (the task's interval, less a margin)."""
    with store.write() as conn:
        conn.executemany(f"UPDATE work_claims SET done_at = {store.engine.now_sql}, "
                         "until = claimed_at + ? WHERE task = ? AND item = ? AND holder = ?",
                         [(hold, task, item, holder) for item in items])


def release_items(store: Store, task: str, items: Sequence[str], holder: str) -> None:
    """Give up claims not worked on (free at once, and not counted as taken over later)."""
    with store.write() as conn:
        conn.executemany(f"UPDATE work_claims SET until = 0, done_at = {store.engine.now_sql} "
                         "WHERE task = ? AND item = ? AND holder = ? AND done_at IS NULL",
                         [(task, item, holder) for item in items])


def check_items(conn: Connection, task: str, items: Sequence[str], holder: str) -> None:
    """Refuse (Fenced) unless ``holder`` still holds its claim on every one of ``items``."""
    marks = ", ".join("?" * len(items))
    rows = conn.execute(f"SELECT item, holder FROM work_claims WHERE task = ? AND item IN "
                        f"({marks})", (task, *items)).fetchall()
    held = {r[0]: r[1] for r in rows}
    for item in items:
        if held.get(item) != holder:
            raise Fenced(f"{holder} lost its claim on {task} {item} (now held by "
                         f"{held.get(item) or 'nobody'}): write refused")


def running_items(store: Store) -> dict[str, int]:
    """Items being worked on now (claimed, not finished, not run out), per holder."""
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT holder, COUNT(*) FROM work_claims WHERE done_at IS NULL AND "
            f"until >= {store.engine.now_sql} GROUP BY holder").fetchall()
    return {r[0]: int(r[1]) for r in rows}


def items_held(store: Store, holder: str) -> dict[str, int]:
    """Items ``holder`` is working on now (claimed, not finished, not run out), per task."""
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT task, COUNT(*) FROM work_claims WHERE holder = ? AND done_at IS NULL AND "
            f"until >= {store.engine.now_sql} GROUP BY task", (holder,)).fetchall()
    return {r[0]: int(r[1]) for r in rows}
