"""Schema migrations, applied in order and keyed on ``PRAGMA user_version`` (SQLite) or the
``schema_version`` table (PostgreSQL, which gets them translated by ``store.engine``).

Append new steps; never edit a released one. SQL stays portable (no SQLite-only types).
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: registry and its append-only history
    """
    CREATE TABLE models (
        name              TEXT NOT NULL,
        version           TEXT NOT NULL,
        status            TEXT NOT NULL,
        owner_team        TEXT NOT NULL,
        business_domain   TEXT NOT NULL,
        model_type        TEXT NOT NULL DEFAULT '',
        framework         TEXT NOT NULL DEFAULT '',
        description       TEXT NOT NULL DEFAULT '',
        training_dataset  TEXT NOT NULL DEFAULT '',
        tags              TEXT NOT NULL DEFAULT '[]',
        dependencies      TEXT NOT NULL DEFAULT '[]',
        thresholds        TEXT NOT NULL DEFAULT '{}',
        monitoring        TEXT NOT NULL DEFAULT '{}',
        deployment        TEXT NOT NULL DEFAULT '{}',
        registered_at     REAL NOT NULL,
        last_updated      REAL NOT NULL,
        status_changed_at REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE INDEX models_status ON models (status);
    CREATE INDEX models_domain ON models (business_domain);
    CREATE TABLE history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        from_status TEXT,
        to_status   TEXT NOT NULL,
        actor       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        evidence    TEXT NOT NULL DEFAULT '{}',
        at          REAL NOT NULL
    );
    CREATE INDEX history_model ON history (name, version, id);
    CREATE INDEX history_at ON history (at);
    """,
    # 2: drift and quality results (the latest per model version is what the exporter shows)
    """
    CREATE TABLE drift_results (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT NOT NULL,
        version       TEXT NOT NULL,
        at            REAL NOT NULL,
        severity      TEXT NOT NULL,
        drifted_share REAL,
        current_rows  INTEGER NOT NULL,
        result        TEXT NOT NULL
    );
    CREATE INDEX drift_results_model ON drift_results (name, version, id);
    CREATE TABLE quality_results (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        name             TEXT NOT NULL,
        version          TEXT NOT NULL,
        at               REAL NOT NULL,
        samples          INTEGER NOT NULL,
        accuracy         REAL,
        concept_severity TEXT,
        result           TEXT NOT NULL
    );
    CREATE INDEX quality_results_model ON quality_results (name, version, id);
    """,
    # 3: serving state per endpoint, scrapes, snapshots, source health, job runs
    """
    CREATE TABLE serving_state (
        name               TEXT NOT NULL,
        version            TEXT NOT NULL,
        endpoint           TEXT NOT NULL,
        state              TEXT NOT NULL,
        reason             TEXT NOT NULL DEFAULT '',
        since              REAL NOT NULL,
        updated_at         REAL NOT NULL,
        unavailable_passes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, version, endpoint)
    );
    CREATE TABLE scrapes (
        endpoint TEXT PRIMARY KEY,
        at       REAL NOT NULL,
        payload  TEXT NOT NULL
    );
    CREATE TABLE snapshots (
        id                      INTEGER PRIMARY KEY AUTOINCREMENT,
        name                    TEXT NOT NULL,
        version                 TEXT NOT NULL,
        at                      REAL NOT NULL,
        interval_seconds        REAL,
        requests_per_second     REAL,
        inferences_per_second   REAL,
        error_ratio             REAL,
        latency_mean_seconds    REAL,
        latency_p50_seconds     REAL,
        latency_p95_seconds     REAL,
        latency_p99_seconds     REAL,
        queue_mean_seconds      REAL,
        pending_requests        REAL,
        memory_bytes            REAL,
        cpu_utilization_ratio   REAL,
        accuracy                REAL,
        precision_ratio         REAL,
        recall_ratio            REAL,
        f1_ratio                REAL,
        roc_auc                 REAL,
        detail                  TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX snapshots_model ON snapshots (name, version, id);
    CREATE INDEX snapshots_at ON snapshots (at);
    CREATE TABLE sources (
        source        TEXT PRIMARY KEY,
        up            INTEGER NOT NULL,
        last_attempt  REAL NOT NULL,
        last_success  REAL,
        last_error    TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE job_runs (
        job           TEXT PRIMARY KEY,
        runs          INTEGER NOT NULL DEFAULT 0,
        failures      INTEGER NOT NULL DEFAULT 0,
        last_start    REAL,
        last_success  REAL,
        last_duration REAL,
        last_error    TEXT NOT NULL DEFAULT ''
    );
    """,
    # 4: evaluations (threshold breaches, performance score and level) of a snapshot
    """
    CREATE TABLE evaluations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        at          REAL NOT NULL,
        snapshot_id INTEGER,
        score       REAL,
        level       TEXT NOT NULL,
        result      TEXT NOT NULL
    );
    CREATE INDEX evaluations_model ON evaluations (name, version, id);
    """,
    # 5: webhook outbox and update jobs
    """
    CREATE TABLE events (
        id         TEXT PRIMARY KEY,
        type       TEXT NOT NULL,
        name       TEXT,
        version    TEXT,
        created_at REAL NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE INDEX events_created ON events (created_at);
    CREATE TABLE deliveries (
        event_id        TEXT NOT NULL,
        endpoint        TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_attempt_at REAL,
        last_status     INTEGER,
        last_error      TEXT NOT NULL DEFAULT '',
        delivered_at    REAL,
        PRIMARY KEY (event_id, endpoint)
    );
    CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
    CREATE TABLE webhook_endpoints (
        endpoint        TEXT PRIMARY KEY,
        disabled        INTEGER NOT NULL DEFAULT 0,
        disabled_reason TEXT NOT NULL DEFAULT '',
        last_success    REAL
    );
    CREATE TABLE webhook_counts (
        endpoint   TEXT NOT NULL,
        event_type TEXT NOT NULL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        failures   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (endpoint, event_type)
    );
    CREATE TABLE update_jobs (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL,
        version        TEXT NOT NULL,
        target_version TEXT NOT NULL,
        trigger_type   TEXT NOT NULL,
        trigger        TEXT NOT NULL,
        state          TEXT NOT NULL,
        progress       REAL NOT NULL DEFAULT 0,
        validation     TEXT NOT NULL DEFAULT '{}',
        reason         TEXT NOT NULL DEFAULT '',
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        finished_at    REAL
    );
    CREATE INDEX update_jobs_model ON update_jobs (name, version, created_at);
    CREATE TABLE update_job_log (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        at     REAL NOT NULL,
        line   TEXT NOT NULL
    );
    CREATE INDEX update_job_log_job ON update_job_log (job_id, id);
    """,
    # 6: retirement scores (latest per version) and resumable retirement plans
    """
    CREATE TABLE retirement_scores (
        name      TEXT NOT NULL,
        version   TEXT NOT NULL,
        at        REAL NOT NULL,
        score     REAL NOT NULL,
        candidate INTEGER NOT NULL,
        result    TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE retirement_plans (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        version    TEXT NOT NULL,
        state      TEXT NOT NULL,
        actor      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        steps      TEXT NOT NULL,
        error      TEXT NOT NULL DEFAULT '',
        owner      TEXT,
        lease_until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX retirement_plans_model ON retirement_plans (name, version, created_at);
    """,
    # 7: models Triton serves under names or versions the registry cannot hold
    """
    CREATE TABLE unmanaged_models (
        endpoint   TEXT NOT NULL,
        name       TEXT NOT NULL,
        version    TEXT NOT NULL,
        reason     TEXT NOT NULL,
        first_seen REAL NOT NULL,
        PRIMARY KEY (endpoint, name, version)
    );
    """,
    # 8: several replicas: the leader lease (with its fencing epoch), the replicas seen, and
    # claims on outbox deliveries
    """
    CREATE TABLE leases (
        name        TEXT PRIMARY KEY,
        holder      TEXT NOT NULL DEFAULT '',
        epoch       INTEGER NOT NULL DEFAULT 0,
        acquired_at REAL,
        renewed_at  REAL,
        until       REAL NOT NULL DEFAULT 0
    );
    INSERT INTO leases (name) VALUES ('leader');
    CREATE TABLE replicas (
        holder     TEXT PRIMARY KEY,
        replica    TEXT NOT NULL,
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        version    TEXT NOT NULL,
        started_at REAL NOT NULL,
        seen_at    REAL NOT NULL,
        stopped_at REAL
    );
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE deliveries ADD COLUMN claim_until REAL;
    """,
    # 9: per-item work shared by replicas (each model's drift or quality check, once per interval)
    """
    CREATE TABLE work_claims (
        task       TEXT NOT NULL,
        item       TEXT NOT NULL,
        holder     TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        until      REAL NOT NULL,
        done_at    REAL,
        PRIMARY KEY (task, item)
    );
    """,
    # 10: prediction logs and late labels, joined by id; what each stream has read; the
    # performance estimates made before the labels, and what the labels showed
    """
    CREATE TABLE predictions (
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        id          TEXT NOT NULL,
        at          REAL NOT NULL,
        prediction  TEXT,
        scores      TEXT,
        received_at REAL NOT NULL,
        PRIMARY KEY (name, version, id)
    );
    CREATE INDEX predictions_at ON predictions (name, version, at);
    CREATE TABLE labels (
        name        TEXT NOT NULL,
        id          TEXT NOT NULL,
        label       TEXT,
        at          REAL NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (name, id)
    );
    CREATE TABLE stream_files (
        stream  TEXT NOT NULL,
        file    TEXT NOT NULL,
        version TEXT NOT NULL,
        rows    INTEGER NOT NULL,
        read_at REAL NOT NULL,
        PRIMARY KEY (stream, file)
    );
    CREATE TABLE stream_counts (
        name     TEXT NOT NULL,
        version  TEXT NOT NULL,
        kind     TEXT NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (name, version, kind)
    );
    CREATE TABLE estimates (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL,
        version      TEXT NOT NULL,
        at           REAL NOT NULL,
        window_start REAL NOT NULL,
        window_end   REAL NOT NULL,
        estimate     TEXT NOT NULL,
        realized     TEXT,
        realized_at  REAL
    );
    CREATE INDEX estimates_model ON estimates (name, version, window_end);
    """,
    # 11: each prediction's segment values (a model's segment_by columns), JSON
    """
    ALTER TABLE predictions ADD COLUMN segments TEXT;
    """,
    # 12: what a drift result was taken on (its inputs_key), so a pass can tell an unchanged
    # check without decoding the last result; NULL on older rows (they are checked again)
    """
    ALTER TABLE drift_results ADD COLUMN inputs_key TEXT;
    """,
    # 13: Triton's CPU utilisation is its host's, not a model's: no longer a snapshot column (the
    # host gauge is read from the endpoint's last scrape)
    """
    ALTER TABLE snapshots DROP COLUMN cpu_utilization_ratio;
    """,
    # 14: a regression model's quality metrics in its snapshots
    """
    ALTER TABLE snapshots ADD COLUMN mae REAL;
    ALTER TABLE snapshots ADD COLUMN rmse REAL;
    ALTER TABLE snapshots ADD COLUMN mape_ratio REAL;
    ALTER TABLE snapshots ADD COLUMN r_squared REAL;
    ALTER TABLE snapshots ADD COLUMN mean_error REAL;
    """,
    # 15: the values a regression model's error estimate (DLE) learns from, per prediction, JSON
    """
    ALTER TABLE predictions ADD COLUMN features TEXT;
    """,
    # 16: Triton's trace samples: the rows decoded from each trace file (a batch per model
    # version and file), the files consumed (by content, so a file read twice counts once), the
    # trace settings lifecycled changed (to put them back), each endpoint's backlog and counts,
    # and the references frozen from traces
    """
    CREATE TABLE trace_rows (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        name    TEXT NOT NULL,
        version TEXT NOT NULL,
        at      REAL NOT NULL,
        rows    INTEGER NOT NULL,
        data    TEXT NOT NULL
    );
    CREATE INDEX trace_rows_model ON trace_rows (name, version, at);
    CREATE TABLE trace_files (
        endpoint TEXT NOT NULL,
        digest   TEXT NOT NULL,
        file     TEXT NOT NULL,
        requests INTEGER NOT NULL,
        read_at  REAL NOT NULL,
        PRIMARY KEY (endpoint, digest)
    );
    CREATE TABLE trace_watches (
        endpoint TEXT NOT NULL,
        name     TEXT NOT NULL,
        previous TEXT,
        applied  TEXT NOT NULL,
        since    REAL NOT NULL,
        PRIMARY KEY (endpoint, name)
    );
    CREATE TABLE trace_state (
        endpoint       TEXT PRIMARY KEY,
        backlog_files  INTEGER NOT NULL,
        backlog_bytes  INTEGER NOT NULL,
        files_total    INTEGER NOT NULL,
        requests_total INTEGER NOT NULL,
        rejected_total INTEGER NOT NULL,
        problems_total INTEGER NOT NULL,
        at             REAL NOT NULL
    );
    CREATE TABLE frozen_references (
        name      TEXT NOT NULL,
        version   TEXT NOT NULL,
        frozen_at REAL NOT NULL,
        rows      INTEGER NOT NULL,
        origin    TEXT NOT NULL,
        data      TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 17: champion and challenger comparisons
    """
    CREATE TABLE comparisons (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        champion   TEXT NOT NULL,
        challenger TEXT NOT NULL,
        state      TEXT NOT NULL,
        job_id     TEXT,
        opened_at  REAL NOT NULL,
        decided_at REAL,
        actor      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        policy     TEXT NOT NULL,
        evidence   TEXT NOT NULL,
        last_seen  TEXT NOT NULL,
        applied    INTEGER NOT NULL
    );
    CREATE INDEX comparisons_model ON comparisons (name, state);
    """,
    # 18: the triggers each update job answers (its own and those attached while it ran)
    """
    CREATE TABLE update_job_triggers (
        job_id       TEXT NOT NULL,
        trigger_type TEXT NOT NULL,
        PRIMARY KEY (job_id, trigger_type)
    );
    INSERT INTO update_job_triggers (job_id, trigger_type)
        SELECT id, trigger_type FROM update_jobs;
    """,
)
