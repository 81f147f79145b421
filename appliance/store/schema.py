"""The database schema, as migrations: the only place the tables are described."""
from __future__ import annotations

# Each entry migrates the schema from version i to i+1.  Never edit a shipped
# entry; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE leases (
        mac TEXT PRIMARY KEY,
        ip TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,            -- offered | bound | released | declined
        expires REAL NOT NULL,
        hostname TEXT,
        vendor_class TEXT,
        client_id TEXT,
        prl TEXT,                       -- option 55 as comma-separated codes
        updated REAL NOT NULL
    );
    CREATE TABLE conflicts (
        ip TEXT PRIMARY KEY,
        until REAL NOT NULL,
        reason TEXT NOT NULL,
        mac TEXT
    );
    CREATE TABLE phones (
        mac TEXT PRIMARY KEY,
        model TEXT,
        ip TEXT,
        hostname TEXT,
        vendor_class TEXT,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        load_before TEXT,               -- load the phone ran when first seen, once known
        current_load TEXT,
        target_load TEXT,
        plan TEXT NOT NULL DEFAULT '[]', -- JSON list of load IDs, stones first
        step INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'seen',
        diagnosis TEXT,
        hints TEXT NOT NULL DEFAULT '{}', -- JSON: tracker's private memory
        updated REAL NOT NULL
    );
    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT UNIQUE,                -- producer's id, so progress updates upsert
        proto TEXT NOT NULL,            -- tftp | http
        client_ip TEXT NOT NULL,
        client_port INTEGER,
        mac TEXT,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        total INTEGER,
        started REAL NOT NULL,
        updated REAL NOT NULL,
        duration REAL,
        result TEXT NOT NULL DEFAULT 'running' -- running|complete|aborted|timeout|not found|refused
    );
    CREATE INDEX transfers_mac ON transfers(mac, started);
    CREATE INDEX transfers_result ON transfers(result);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        source TEXT NOT NULL,           -- dhcp | tftp | http | dns | api | tracker | ...
        kind TEXT NOT NULL,
        mac TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_mac ON events(mac, id);
    CREATE TABLE services (
        name TEXT PRIMARY KEY,
        pid INTEGER,
        started REAL,
        heartbeat REAL,
        last_error TEXT,
        last_error_at REAL,
        info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated REAL NOT NULL
    );
    """,
]

