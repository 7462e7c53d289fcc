"""Several replicas on a real PostgreSQL, against a real Triton and a real webhook receiver:
kill -9 at random moments (the leader and the others), a replica paused past its lease, and a
real Prometheus scraping three replicas seeing the fleet once."""

from __future__ import annotations

import base64
import itertools
import math
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools import triton
from devtools.postgres import Postgres
from devtools.receiver import Receiver
from tests.helpers import endpoint, wait_for
from tests.integration.test_daemon import FAST, Daemon, daemon_config

LEASE = 2.0  # seconds: short, so that a failover takes a few seconds
# the bound on a failover, from the kill to the new leader's lease (its acquired_at, by the same
# clock): the lease runs out, then a standby's next try (every LEASE / 3), plus a second for the
# standby's own scheduling on a loaded machine
FAILOVER_BOUND = LEASE + LEASE / 3 + 1.0
SPARES = tuple(triton.ModelSpec(f"spare_{i}", "1", 4, (0.1 * i, 0.1, 0.1, 0.1))
               for i in range(1, 4))
SECRET = "whsec_" + base64.b64encode(b"r" * 32).decode()
_LEADER = re.compile(r"^lifecycled_leader (\S+)$", re.M)


def leader_value(daemon: Daemon) -> float | None:
    try:
        text = requests.get(daemon.url("/metrics"), timeout=2).text
    except requests.RequestException:
        return None
    found = _LEADER.search(text)
    return float(found.group(1)) if found else None


def port_free(port: int) -> bool:
    """Whether a new daemon could listen on ``port`` (the killed one's listener is gone)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Cluster:
    """Replicas r0, r1, ... of one configuration, each on its own port."""

    def __init__(self, tmp_path: Path, url: str, password_file: Path, extra: dict[str, Any],
                 env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.password_file = password_file
        self.extra = extra
        self.env = env
        self.configs: dict[str, Path] = {}
        self.daemons: dict[str, Daemon] = {}

    def config(self, name: str) -> Path:
        if name not in self.configs:
            self.configs[name] = daemon_config(
                self.tmp_path / name, **self.extra)
            text = self.configs[name].read_text()
            import yaml
            data = yaml.safe_load(text)
            data["daemon"].update({"state_url": self.url, "replica": name,
                                   "state_password_file": str(self.password_file),
                                   "leader_lease": f"{LEASE}s"})
            self.configs[name].write_text(yaml.safe_dump(data))
        return self.configs[name]

    def start(self, name: str) -> Daemon:
        daemon = Daemon(self.config(name), self.env, self.tmp_path / f"{name}.log")
        self.daemons[name] = daemon
        return daemon

    def alive(self) -> dict[str, Daemon]:
        return {n: d for n, d in self.daemons.items() if d.process.poll() is None}

    def leaders(self) -> list[str]:
        return [n for n, d in self.alive().items() if leader_value(d) == 1.0]

    def one_leader(self) -> str:
        found = self.leaders()
        return found[0] if len(found) == 1 else ""

    def stop(self) -> None:
        for daemon in self.daemons.values():
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGCONT)
                daemon.stop()


@pytest.fixture
def database(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"replicas_{os.getpid()}_{int(time.monotonic() * 1000)}"
    url = postgres.create_database(name)
    password = tmp_path / "pg-password"
    password.write_text(postgres.password + "\n")
    yield url, password
    postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def env_without_pgpassword(**extra: str) -> dict[str, str]:
    """The replicas read the password from daemon.state_password_file, not from libpq's
    PGPASSWORD that the test process has."""
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env.update(extra)
    return env


def history(postgres: Postgres, url: str) -> list[tuple[Any, ...]]:
    return postgres.sql("SELECT id, name, version, kind, from_status, to_status, at FROM history "
                        "ORDER BY id", url.rsplit("/", 1)[1])


@pytest.mark.slow
def test_kill_9_of_leaders_and_standbys_loses_nothing_and_acts_once(
        tmp_path: Path, triton_factory: Any, cli: Any, postgres: Postgres,
        database: tuple[str, Path]) -> None:
    url, password_file = database
    db = url.rsplit("/", 1)[1]
    # spare versions that stop serving during the chaos: the leader marks each failed and
    # retires it (a plan of five steps), while replicas are being killed
    server = triton_factory("t1", (*triton.SEED_MODELS, *SPARES))
    receiver = Receiver(SECRET)
    hook = {"url": receiver.url, "secret_env": "HOOK_SECRET", "backoff_initial": "1s",
            "backoff_max": "2s", "timeout": "2s",
            "events": ["model.registered", "model.status_changed", "model.retired"]}
    cluster = Cluster(tmp_path, url, password_file, {
        "sources": {"triton": [endpoint("local", server)]},
        "schedule": {**FAST, "deliver": "1s", "retirement": "1s"}, "webhooks": {"ci": hook},
        "policies": {"retirement": {"auto_retire_failed": True,
                                    "backup_dir": str(tmp_path / "backups")}}},
        env_without_pgpassword(HOOK_SECRET=SECRET))
    rng = random.Random(17)
    failovers: list[float] = []
    try:
        for name in ("r0", "r1", "r2"):
            cluster.start(name)
        for daemon in cluster.daemons.values():
            daemon.wait_until(daemon.ready, "readyz", timeout=90)
        wait_for(cluster.one_leader, "one leader among three", timeout=30)
        first = cluster.daemons["r0"]
        wait_for(lambda: requests.get(first.url("/api/v1/models/risk_assessment/3"),
                                      timeout=5).ok, "the leader's first discovery", timeout=60)
        config = cluster.config("r0")
        seen: list[tuple[Any, ...]] = []
        snapshots_before = 0
        unload_at = {2 + 6 * i: spare.name for i, spare in enumerate(SPARES)}
        for cycle in range(20):
            triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
            if cycle in unload_at:  # its pipeline stops serving it
                requests.post(f"{server.url}/v2/repository/models/{unload_at[cycle]}/unload",
                              json={}, timeout=60).raise_for_status()
            target = "deprecated" if cycle % 2 == 0 else "production"
            moved = cli("models", "set-status", "risk_assessment:3", target, "--reason",
                        f"cycle {cycle}", config=config)
            assert moved.code == 0, moved.err
            leader = wait_for(cluster.one_leader, "a leader", timeout=30)
            # the leader on even cycles, another replica on odd ones
            victim = leader if cycle % 2 == 0 else rng.choice(
                [n for n in cluster.alive() if n != leader])
            time.sleep(rng.uniform(0.0, 1.5))  # a random moment of its work
            killed_at = time.time()  # the clock the daemons stamp their leases with
            cluster.daemons[victim].process.kill()
            cluster.daemons[victim].process.wait(timeout=30)
            if victim == leader:
                new = wait_for(lambda v=victim: [n for n in cluster.leaders() if n != v],
                               f"a new leader after killing {victim}", timeout=30)
                assert len(new) == 1, f"two leaders at once: {new}"
                (acquired,) = postgres.sql("SELECT acquired_at FROM leases WHERE name = 'leader'",
                                           db)[0]
                failovers.append(float(acquired) - killed_at)  # type: ignore[arg-type]
            rows = history(postgres, url)
            assert rows[: len(seen)] == seen, f"history changed after the kill in cycle {cycle}"
            seen = rows
            wait_for(lambda v=victim: port_free(cluster.daemons[v].port),
                     f"{victim}'s port free again", timeout=30)
            cluster.start(victim)
        for daemon in cluster.alive().values():
            daemon.wait_until(daemon.ready, "readyz", timeout=90)
        snapshots_before = postgres.sql("SELECT COUNT(*) FROM snapshots", db)[0][0]
        # the fleet's snapshots keep flowing after the last kill
        wait_for(lambda: postgres.sql("SELECT COUNT(*) FROM snapshots", db)[0][0]
                 > snapshots_before + 3, "snapshots after the chaos", timeout=60)
        # every event is delivered (at least once; duplicates carry the same webhook-id)
        events = {r[0] for r in postgres.sql("SELECT DISTINCT event_id FROM deliveries", db)}
        try:
            wait_for(lambda: events <= set(receiver.unique()), "every event delivered",
                     timeout=90)
        except AssertionError:
            states = postgres.sql("SELECT state, attempts, last_error, claimed_by FROM "
                                  "deliveries WHERE state != 'delivered'", db)
            raise AssertionError(f"not delivered: {states}") from None
        assert not receiver.rejected
        ids = Counter(h["webhook-id"] for h in receiver.attempts if "webhook-id" in h)
        assert set(ids) <= events | {e.id for e in receiver.accepted}
        # no transition applied twice: each model's status chain is unbroken, one registration
        rows = history(postgres, url)
        assert rows[: len(seen)] == seen
        registered = Counter((r[1], r[2]) for r in rows if r[3] == "registered")
        assert registered and set(registered.values()) == {1}, registered
        chains: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[3] == "status_changed":
                chains.setdefault((row[1], row[2]), []).append(row)
        for ref, chain in chains.items():
            for before, after in itertools.pairwise(chain):
                assert after[4] == before[5], f"{ref}: a transition applied twice or lost"
        moves = chains[("risk_assessment", "3")]
        assert len(moves) == 20
        # each spare retired once: one plan, every step done once, one model.retired event
        spares = [spare.name for spare in SPARES]
        wait_for(lambda: sorted(r[0] for r in postgres.sql(
            "SELECT name FROM retirement_plans WHERE state = 'completed'", db)) == spares,
            "every spare retired", timeout=90)
        plans = postgres.sql("SELECT name, state FROM retirement_plans ORDER BY name", db)
        assert plans == [(name, "completed") for name in spares], plans
        retired = Counter(r[1] for r in history(postgres, url) if r[5] == "retired")
        assert retired == dict.fromkeys(spares, 1), retired
        announced = Counter(r[0] for r in postgres.sql(
            "SELECT name FROM events WHERE type = 'model.retired'", db))
        assert announced == dict.fromkeys(spares, 1), announced
        logs = "".join(d.log() for d in cluster.daemons.values())
        steps = Counter(re.findall(r"retirement step done model=(\w+):1 step=(\w+)", logs))
        assert steps and max(steps.values()) == 1, steps  # none recorded done twice
        # one model.registered event per registered version: discovery acted once
        kinds = Counter(r[0] for r in postgres.sql(
            "SELECT type FROM events WHERE type = 'model.registered'", db))
        assert kinds["model.registered"] == len(registered)
        assert len(failovers) == 10
        assert max(failovers) <= FAILOVER_BOUND, failovers
        duplicates = sum(n - 1 for n in Counter(e.id for e in receiver.accepted).values())
        print(f"failovers (s): {sorted(round(f, 2) for f in failovers)}; "
              f"duplicate deliveries: {duplicates}")
    finally:
        cluster.stop()
        receiver.stop()


@pytest.mark.slow
def test_a_replica_paused_past_its_lease_does_not_act_when_it_wakes(
        tmp_path: Path, triton_factory: Any, cli: Any, postgres: Postgres,
        database: tuple[str, Path]) -> None:
    url, password_file = database
    db = url.rsplit("/", 1)[1]
    server = triton_factory()
    cluster = Cluster(tmp_path, url, password_file,
                      {"sources": {"triton": [endpoint("local", server)]}},
                      env_without_pgpassword())
    try:
        first = cluster.start("a")
        first.wait_until(lambda: leader_value(first) == 1.0, "a leads", timeout=90)
        second = cluster.start("b")
        second.wait_until(second.ready, "b ready", timeout=90)
        assert leader_value(second) == 0.0
        (epoch_a,) = postgres.sql("SELECT epoch FROM leases WHERE name = 'leader'", db)[0]
        paused_at = time.time()  # the clock the daemons stamp their leases with
        first.process.send_signal(signal.SIGSTOP)  # cut off: neither renews nor acts
        second.wait_until(lambda: leader_value(second) == 1.0, "b takes over", timeout=30)
        holder, epoch_b, acquired = postgres.sql(
            "SELECT holder, epoch, acquired_at FROM leases WHERE name = 'leader'", db)[0]
        assert float(acquired) - paused_at <= FAILOVER_BOUND  # type: ignore[arg-type]
        assert holder.startswith("b/") and epoch_b == epoch_a + 1
        status = cli("cluster", "status", "--json", config=cluster.config("b"))
        assert status.code == 0, status.err
        shown = status.json()
        assert shown["leader"]["holder"] == holder and shown["leader"]["epoch"] == epoch_b
        roles = {r["replica"]: r["leader"] for r in shown["replicas"]}
        assert roles == {"a": False, "b": True}
        text = cli("cluster", "status", config=cluster.config("b")).out
        assert f"leader: {holder} (epoch {epoch_b}" in text and "standby" in text
        runs_before = dict(postgres.sql("SELECT job, runs FROM job_runs", db))
        first.process.send_signal(signal.SIGCONT)  # wakes with work it thinks it may do
        first.wait_until(lambda: leader_value(first) == 0.0, "a knows it lost the lease",
                         timeout=30)
        # b keeps leading at its epoch; a wrote nothing as leader after waking
        wait_for(lambda: dict(postgres.sql("SELECT job, runs FROM job_runs", db)) != runs_before,
                 "b's next passes")
        assert postgres.sql("SELECT holder, epoch FROM leases WHERE name = 'leader'", db)[0] == (
            holder, epoch_b)
        log = first.log()
        woke = log.rfind("leader lease lost")
        assert woke >= 0, log[-2000:]
        # a job that woke inside a write finds it ended by the server (idle past its limit)
        late = [line for line in log[woke:].splitlines()
                if "job failed" in line and "lost the leader lease" not in line
                and "the state store" not in line]
        assert not late, late
    finally:
        cluster.stop()


PER_REPLICA = ("lifecycled_build_info", "lifecycled_replica_info", "lifecycled_leader",
               "lifecycled_claims", "lifecycled_state_store_writable",
               "lifecycled_state_store_write_failures_total",
               "lifecycled_exporter_collector_success",
               "lifecycled_task_interval_seconds")


def shipped_expressions() -> dict[str, str]:
    """Every alert and recording rule, and every dashboard panel query, with the dashboards'
    variables set to "all"; those about a replica itself (not the fleet) are left out: they
    are per replica by design."""
    import json

    import yaml

    from tests.helpers import ROOT
    found: dict[str, str] = {}
    rules = yaml.safe_load((ROOT / "alerting" / "rules" / "lifecycled.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    values = {"job": "lifecycled", "instance": ".+", "model": ".+", "version": ".+",
              "__rate_interval": "30s"}
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        def walk(node: Any, where: str, board: str = path.stem) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    expr = re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], node["expr"])
                    found[f"{board}: {where} {node.get('refId', '')}"] = expr
                for key, value in node.items():
                    walk(value, str(node.get("title", where)) if key == "targets" else where,
                         board)
            elif isinstance(node, list):
                for item in node:
                    walk(item, where, board)
        walk(json.loads(path.read_text()), "")
    return {k: v for k, v in found.items() if not any(f in v for f in PER_REPLICA)}


def _answer(prometheus: Any, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    body = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr},
                        timeout=10).json()
    assert body["status"] == "success", (expr, body)
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return {(): float(result[1])}
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


@pytest.mark.slow
def test_rules_and_dashboards_answer_the_same_with_one_or_three_replicas_scraped(
        tmp_path: Path, triton_factory: Any, servers: Any, database: tuple[str, Path]) -> None:
    """A real Prometheus scrapes all three replicas, another scrapes only the leader (what one
    replica alone would export): every shipped rule and dashboard query gives the same series
    and values in both (values within a scrape's difference for rates and ages)."""
    from tests.helpers import write_outcomes

    url, password_file = database
    server = triton_factory()
    outcomes = tmp_path / "outcomes.csv"
    write_outcomes(outcomes, accuracy=0.70)  # breaches min_accuracy: the alert joins fire
    cluster = Cluster(tmp_path, url, password_file, {
        "models_d": False, "sources": {"triton": [endpoint("local", server)]},
        "models": {"credit_scoring": {"owner_team": "risk_ml",
                                      "quality": {"outcomes": str(outcomes)}}}},
        env_without_pgpassword())
    try:
        for name in ("r0", "r1", "r2"):
            cluster.start(name)
        for daemon in cluster.daemons.values():
            daemon.wait_until(daemon.ready, "readyz", timeout=90)
        leader = cluster.daemons[wait_for(cluster.one_leader, "a leader", timeout=30)]
        rules = str(Path(__file__).resolve().parents[2] / "alerting" / "rules" / "lifecycled.yml")

        def prometheus(targets: list[Daemon]) -> Any:
            return servers("prometheus", {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [rules],
                "scrape_configs": [
                    {"job_name": "lifecycled", "static_configs": [
                        {"targets": [f"127.0.0.1:{d.port}" for d in targets]}]},
                    {"job_name": "triton", "static_configs": [
                        {"targets": [server.metrics_url.split("/")[2]]}]}]})
        three = prometheus(list(cluster.daemons.values()))
        one = prometheus([leader])
        for p in (three, one):
            p.wait_ready("/-/ready")
            # the fleet is there and the accuracy alert (a join of three fleet series) pending
            wait_for(lambda p=p: _answer(p, 'count(lifecycled_model_info) > 0')
                     and _answer(p, 'ALERTS{alertname="LifecycledModelAccuracyLow"}'),
                     "the fleet scraped and judged", timeout=90)
        wait_for(lambda: _answer(three, 'count(up{job="lifecycled"} == 1) == 3'),
                 "three replicas scraped", timeout=30)
        for _ in range(3):
            triton.infer(server.url, "credit_scoring", [[0.1, 0.2, 0.3, 0.4]])
        expressions = shipped_expressions()
        assert len(expressions) > 30
        compared = 0
        for what, expr in expressions.items():
            timing = any(word in expr for word in ("rate(", "time()", "increase("))

            def agree(expr: str = expr, timing: bool = timing) -> bool:
                a, b = _answer(three, expr), _answer(one, expr)
                if set(a) != set(b):
                    return False
                for key, value in a.items():
                    other = b[key]
                    if math.isnan(value) and math.isnan(other):
                        continue  # 0/0: a rate of a model without traffic, in both
                    slack = 0.25 * max(abs(value), abs(other)) + 2.0 if timing else 1e-9
                    if not abs(value - other) <= slack:
                        return False
                return True
            try:
                wait_for(agree, what, timeout=15)
            except AssertionError:
                raise AssertionError(f"{what}: {expr}\nthree replicas: {_answer(three, expr)}"
                                     f"\none replica: {_answer(one, expr)}") from None
            compared += 1
        # not vacuous: the fleet is there, counted once
        models = _answer(three, "count(lifecycled_model_info)")
        assert next(iter(models.values())) == len(triton.SEED_MODELS)
        print(f"{compared} shipped expressions agree with 1 and 3 replicas scraped")
    finally:
        cluster.stop()


OUTAGE = 30.0  # seconds the database is down
BACK_WITHIN = 5.0  # seconds after its return by which every replica must be ready again


@pytest.mark.slow
def test_a_postgresql_outage_leaves_the_replicas_live_and_ready_soon_after(
        tmp_path: Path, triton_factory: Any) -> None:
    """The database stops for 30 s (as in a crash) and comes back: three replicas stay up and
    answer /healthz at once throughout, say so in /readyz and their logs, are all ready within 5 s
    of the database's return, and one leads again. (A server of its own: the run's shared one
    must not stop.)"""
    from devtools.postgres import temporary_postgres

    with temporary_postgres() as own:
        url = own.create_database("outage")
        password = tmp_path / "pw"
        password.write_text(own.password)
        server = triton_factory()
        cluster = Cluster(tmp_path, url, password, {
            "sources": {"triton": [endpoint("local", server)]}}, env_without_pgpassword())
        for name in ("r0", "r1", "r2"):
            cluster.start(name)
        try:
            wait_for(cluster.one_leader, "one leader", timeout=90)
            for daemon in cluster.daemons.values():
                daemon.wait_until(daemon.ready, "ready", timeout=60)
            own.stop()
            stopped = time.monotonic()
            slowest_health = 0.0
            unready: set[str] = set()
            while time.monotonic() - stopped < OUTAGE:
                for name, daemon in cluster.daemons.items():
                    began = time.monotonic()
                    # liveness never waits on the pool: a 1 s client timeout fails the test
                    assert requests.get(daemon.url("/healthz"), timeout=1).status_code == 200
                    slowest_health = max(slowest_health, time.monotonic() - began)
                    reply = requests.get(daemon.url("/readyz"), timeout=5)
                    # the listener answers from the daemon's last report (at most a second
                    # old): the outage shows from the next one
                    if reply.status_code == 503 and "unreachable" in reply.json().get(
                            "store", ""):
                        unready.add(name)
                time.sleep(0.2)
            assert unready == set(cluster.daemons), \
                f"/readyz said the store is unreachable on {unready} only"
            for daemon in cluster.daemons.values():  # the tasks' failures name the cause
                # (a standby's own tasks, deliver among them, fail where they record their run)
                daemon.wait_until(lambda d=daemon: re.search(
                    r"(job failed|cannot record job run) job=\w+ error=cannot (read|write) the "
                    r"state store .*Connection refused", d.log()), "the outage in the log")
            own.start()
            back = time.monotonic()
            ready_after: dict[str, float] = {}
            for name, daemon in cluster.daemons.items():
                daemon.wait_until(daemon.ready, f"{name} ready again", timeout=60)
                ready_after[name] = time.monotonic() - back
            print(f"outage {OUTAGE:.0f} s: slowest /healthz {slowest_health * 1000:.0f} ms; "
                  "ready after the return: " + ", ".join(
                      f"{n} {s:.1f} s" for n, s in sorted(ready_after.items())))
            assert max(ready_after.values()) <= BACK_WITHIN, ready_after
            wait_for(cluster.one_leader, "one leader again", timeout=30)

            def collects() -> int:
                return int(dict(own.sql("SELECT job, runs FROM job_runs", "outage")).get(
                    "collect", 0))
            before = collects()
            wait_for(lambda: collects() > before, "collect passes again", timeout=30)
            for daemon in cluster.daemons.values():
                assert "Traceback" not in daemon.log(), daemon.log()[-3000:]
        finally:
            cluster.stop()
