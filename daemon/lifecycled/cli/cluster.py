"""``lifecycled cluster status`` (replicas, the leader lease, outbox claims and the model checks
each replica is running) and ``lifecycled state
migrate`` (copy a whole store, SQLite to PostgreSQL or back, verified)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from lifecycled.cli.output import EXIT_OK, Formatter, show
from lifecycled.errors import InputError
from lifecycled.render import table, utc

if TYPE_CHECKING:
    from lifecycled.store import Store


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.store.cluster import claims, leases, replicas, running_items
    with app.opened(args.config, create=False) as opened:
        store = opened.store
        now = store.database_time()
        lease = {item.name: item for item in leases(store)}.get("leader")
        seen = replicas(store)
        held = claims(store)
        working = running_items(store)
    live_lease = lease is not None and lease.until > now and lease.holder != ""
    leader = lease.holder if lease is not None and live_lease else ""
    rows = [{**r.to_json(), "leader": r.holder == leader,
             "alive": r.stopped_at is None and now - r.seen_at <= 3 * opened.settings.daemon.leader_lease,
             "claims_held": held.get(r.holder, 0),
             "items_running": working.get(r.holder, 0)} for r in seen]
    payload: dict[str, Any] = {
        "state": store.location, "several_replicas": store.several_replicas,
        "database_time": now,
        "leader": ({**lease.to_json(), "expires_in_seconds": lease.until - now}
                   if lease is not None and live_lease else None),
        "last_epoch": lease.epoch if lease is not None else 0,
        "replicas": rows, "claims": held, "items_running": working}

    def text() -> str:
        lines = [f"state: {store.location}"]
        if lease is not None and live_lease:
            lines.append(f"leader: {lease.holder} (epoch {lease.epoch}, since "
                         f"{utc(lease.acquired_at or 0)}, lease ends in {lease.until - now:.1f}s)")
        else:
            lines.append(f"leader: none (last epoch {payload['last_epoch']}); a replica takes "
                         f"the lease on its next try")
        lines.append(table(
            ["REPLICA", "HOLDER", "HOST", "PID", "VERSION", "STARTED", "LAST SEEN", "ROLE",
             "CLAIMS", "CHECKS"],
            [[r["replica"], r["holder"], r["host"], r["pid"], r["version"],
              utc(r["started_at"]), f"{now - r['seen_at']:.1f}s ago",
              "leader" if r["leader"] else ("standby" if r["alive"] else
                                            "stopped" if r["stopped_at"] else "gone"),
              r["claims_held"], r["items_running"]] for r in rows]))
        return "\n".join(lines)
    show(args, payload, text)
    return EXIT_OK


def _open(url: str, password_file: str | None, password_env: str | None, what: str) -> Store:
    from lifecycled.dirs import state_base_dir
    from lifecycled.secrets import read_secret
    from lifecycled.store import open_store

    password = (read_secret(password_file, password_env, os.environ, what=what)
                if password_file or password_env else None)
    return open_store(url, state_base_dir(os.environ), password=password)


def cmd_state_migrate(args: argparse.Namespace) -> int:
    from lifecycled.store.copy import copy_store
    from lifecycled.store.engine import redact
    for option, url in (("--from", args.source), ("--to", args.target)):
        if "://" not in url:
            raise InputError(f"{option} {url!r}: give a URL (sqlite:///FILE or "
                             f"postgresql://USER@HOST/DATABASE)")
    source = _open(args.source, args.from_password_file, args.from_password_env, "--from password")
    try:
        target = _open(args.target, args.to_password_file, args.to_password_env, "--to password")
        try:
            copied = copy_store(source, target)
        finally:
            target.close()
    finally:
        source.close()
    payload = {"from": redact(args.source), "to": redact(args.target), "verified": True,
               "tables": [c.to_json() for c in copied]}
    show(args, payload, lambda: "\n".join([
        f"copied {redact(args.source)} to {redact(args.target)}; every table verified "
        f"(row counts and checksums)",
        table(["TABLE", "ROWS", "CHECKSUM"], [[c.table, c.rows, c.checksum[:16]] for c in copied])]))
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    parents = [common, as_json]
    group = sub.add_parser("cluster", formatter_class=Formatter,
                           help="several replicas on one PostgreSQL store")
    commands = group.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    p = commands.add_parser("status", parents=parents, formatter_class=Formatter,
                            help="replicas, the leader lease (holder, epoch, since), claims")
    p.set_defaults(func=cmd_cluster_status)

    group = sub.add_parser("state", formatter_class=Formatter, help="the state store itself")
    commands = group.add_subparsers(dest="state_command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "migrate", parents=[as_json], formatter_class=Formatter,
        help="copy a whole state store into a new, empty one and verify it",
        description="Copy registry, history, snapshots, results, outbox, update jobs and "
                    "retirement plans from one store to another (SQLite to PostgreSQL, or back), "
                    "in one transaction, then verify each table's row count and checksum. Stop "
                    "the daemon first; the source is only read.")
    p.add_argument("--from", dest="source", required=True, metavar="URL",
                   help="the store to copy (sqlite:///FILE or postgresql://…)")
    p.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="the new store, empty (it is created and migrated first)")
    for side in ("from", "to"):
        p.add_argument(f"--{side}-password-file", metavar="FILE",
                       help=f"the PostgreSQL password of --{side} (else libpq: PGPASSWORD, "
                            f"~/.pgpass, a service file)")
        p.add_argument(f"--{side}-password-env", metavar="VAR",
                       help=f"an environment variable holding the password of --{side}")
    p.set_defaults(func=cmd_state_migrate)
