//! The schema, embedded: each version in SQLite's and PostgreSQL's spelling,
//! applied in order inside one write transaction each, recorded in
//! `oubli_schema`. A database newer than this build is refused rather than
//! half-understood.

use super::{Backend, Store, StoreError};

/// (version, SQLite, PostgreSQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../migrations/sqlite/0002_paused_systems.sql"),
        include_str!("../migrations/postgres/0002_paused_systems.sql"),
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_audit_chain.sql"),
        include_str!("../migrations/postgres/0003_audit_chain.sql"),
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_service.sql"),
        include_str!("../migrations/postgres/0004_service.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_consent.sql"),
        include_str!("../migrations/postgres/0005_consent.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_answers.sql"),
        include_str!("../migrations/postgres/0006_answers.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_queue.sql"),
        include_str!("../migrations/postgres/0007_queue.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_console_sessions.sql"),
        include_str!("../migrations/postgres/0008_console_sessions.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_intake.sql"),
        include_str!("../migrations/postgres/0009_intake.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_privacy.sql"),
        include_str!("../migrations/postgres/0010_privacy.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_retention.sql"),
        include_str!("../migrations/postgres/0011_retention.sql"),
    ),
    (
        12,
        include_str!("../migrations/sqlite/0012_merkle_log.sql"),
        include_str!("../migrations/postgres/0012_merkle_log.sql"),
    ),
];

/// The newest schema version this build knows.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Bring the schema up to date.
pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    // Several processes may open a fresh database at once: on PostgreSQL,
    // serialise them on an advisory lock held until commit (SQLite's BEGIN
    // IMMEDIATE already does).
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7366221405)")
            .execute(&mut *tx)
            .await?;
    }
    script(
        &mut tx,
        "CREATE TABLE IF NOT EXISTS oubli_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM oubli_schema")
        .fetch_one(&mut *tx)
        .await?;
    if current > LATEST {
        return Err(StoreError::TooNew {
            found: current,
            known: LATEST,
        });
    }
    for (version, sqlite, postgres) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let sql = match store.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        script(&mut tx, sql).await?;
        sqlx::query("INSERT INTO oubli_schema (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(store.now())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await?;
    Ok(())
}

/// Run a script of several statements, without parameters (SQLite runs
/// them one by one, PostgreSQL through its simple-query protocol). Not
/// `sqlx::raw_sql`: its future is not provably `Send`, which would keep
/// `Store::open` off spawned tasks.
async fn script(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sql: &str,
) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut **tx, sql).await?;
    Ok(())
}
