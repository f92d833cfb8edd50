//! The durable store of oubli: requests and their per-system plans and
//! results, the task table the workers claim from, the request events, the
//! per-request data keys (wrapped) and the restriction registry.
//!
//! One code path for two engines, through sqlx's `Any` driver: a SQLite file
//! (the default: WAL, `synchronous=FULL`, every write transaction opened with
//! `BEGIN IMMEDIATE` so that concurrent writers wait for the lock instead of
//! failing busy halfway) or a PostgreSQL server (`postgres://…`, where
//! several workers on several machines claim tasks with `FOR UPDATE SKIP
//! LOCKED`). The schema is ours and embedded ([`migrations`]); each engine
//! has its own spelling of the same tables.
//!
//! Personal data is never written in the clear: it goes into `*_sealed`
//! columns, sealed by [`keys::Vault`] under the request's data key and bound
//! to its table, column and row; lookups use blind indexes. Timestamps are
//! milliseconds since the Unix epoch.

pub mod answers;
pub mod audit;
pub mod consent;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod migrations;
pub mod privacy;
pub mod requests;
pub mod restrictions;
pub mod retention;
pub mod service;
pub mod sessions;
pub mod tasks;

use oubli_model::{SharedClock, clock};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A write transaction, opened by [`Store::write`] and ended by [`commit`]
/// (dropped, it rolls back).
pub type Tx = Transaction<'static, Any>;

/// Commit a write transaction.
pub async fn commit(tx: Tx) -> Result<(), StoreError> {
    Ok(tx.commit().await?)
}

/// A store error: one line, never personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL or file is not usable.
    #[error("database {0}")]
    Open(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The database was written by a newer oubli.
    #[error(
        "the database is at schema version {found}, newer than this oubli ({known}): upgrade oubli"
    )]
    TooNew {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A row does not exist.
    #[error("no {what} {id}")]
    NotFound {
        /// What was looked up (`request`).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A write was refused because the row changed meanwhile (a lease that
    /// expired and was taken over, a request whose state moved on).
    #[error("{0}")]
    Conflict(String),
    /// Sealing or opening failed (a missing or wrong key, a shredded
    /// request, a tampered value).
    #[error("{0}")]
    Crypto(#[from] oubli_crypto::CryptoError),
    /// The store was opened read-only and this writes.
    #[error(
        "database file is read-only: this command writes to it (make the file writable, or use a writable copy)"
    )]
    ReadOnly,
    /// A stored value could not be read back.
    #[error("a stored {0} could not be read: the database was edited by hand or is damaged")]
    Corrupt(&'static str),
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A handle on the store: cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    read_only: bool,
    clock: SharedClock,
}

/// How long a SQLite writer waits for the lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Put a SQLite file in WAL mode, once: the mode is the file's and stays.
/// Switching takes an exclusive lock that SQLite's busy timeout does not
/// wait for, so a connection that merely re-asked for WAL while another
/// process was writing failed at once with "database is locked" (two
/// workers starting together). It asks which mode the file is in (a read,
/// which waits), and only a file not yet in WAL is switched, retried with
/// backoff for as long as a writer would wait.
async fn wal(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        // The answer is the mode the file is now in: a file that cannot
        // do WAL (in memory) keeps its own, as before.
        match sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode = WAL").await {
            Ok(_) => return Ok(()),
            Err(e) if busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether SQLite said the database is busy or locked (primary codes 5 and
/// 6, whatever the extended code).
fn busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

impl Store {
    /// Open (creating it if needed) the store at `url` and bring its schema
    /// up to date: `postgres://…` or `postgresql://…` for PostgreSQL,
    /// `sqlite://PATH` or a plain file path for SQLite.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let mut read_only = false;
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if path.is_empty() {
                return Err(StoreError::Open("path is empty".into()));
            }
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                && !dir.is_dir()
            {
                return Err(StoreError::Open(format!(
                    "{path}: directory {} does not exist",
                    dir.display()
                )));
            }
            // A file this process may not write (a read-only copy, a
            // backup) is opened read-only: listings,
            // `request show` and `audit verify` work, and a write fails at
            // once saying the database is read-only (rather than every
            // connection failing to set WAL until the pool times out).
            // Otherwise `mode=rwc`: create the file when missing.
            if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
                read_only = true;
                (Backend::Sqlite, format!("sqlite://{path}?mode=ro"))
            } else {
                (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
            }
        };
        // Validate the URL, and reach the server once, before the pool
        // hides a refused connection behind its acquire timeout.
        sqlx::any::AnyConnectOptions::from_str(&url).map_err(|e| {
            StoreError::Open(format!("URL is not valid: {}", redact(&e.to_string())))
        })?;
        if backend == Backend::Postgres {
            let probe = tokio::time::timeout(
                Duration::from_secs(10),
                <sqlx::AnyConnection as sqlx::Connection>::connect(&url),
            )
            .await
            .map_err(|_| StoreError::Open(format!("{}: no answer within 10 s", redact(&url))))?
            .map_err(|e| {
                StoreError::Open(format!("{}: {}", redact(&url), redact(&e.to_string())))
            })?;
            sqlx::Connection::close(probe).await.ok();
        } else {
            // One connection with the pool's settings first: a file that
            // cannot be opened or written says why now, not as the pool's
            // acquire timeout 30 s later.
            let mut probe = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
                .await
                .map_err(|e| StoreError::Open(redact(&e.to_string())))?;
            let checked = if read_only {
                sqlx::Executor::execute(&mut probe, "SELECT COUNT(*) FROM sqlite_master")
                    .await
                    .map(|_| ())
            } else {
                wal(&mut probe).await
            };
            checked.map_err(|e| StoreError::Open(redact(&e.to_string())))?;
            sqlx::Connection::close(probe).await.ok();
        }
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite && read_only {
                        sqlx::Executor::execute(&mut *conn, "PRAGMA query_only = ON").await?;
                    } else if backend == Backend::Sqlite {
                        // The busy timeout first, so that what follows
                        // waits for a writer instead of failing. FULL: a
                        // commit is on disk when it returns (the task log
                        // must survive a power cut). Foreign keys are off
                        // by default in SQLite. WAL (readers never block
                        // the writer) is the file's, set by the probe.
                        for pragma in [
                            format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()),
                            "PRAGMA synchronous = FULL".to_string(),
                            "PRAGMA foreign_keys = ON".to_string(),
                        ] {
                            sqlx::Executor::execute(&mut *conn, pragma.as_str()).await?;
                        }
                        wal(conn).await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| StoreError::Open(redact(&e.to_string())))?;
        let store = Store {
            pool,
            backend,
            read_only,
            clock: clock::system(),
        };
        if !read_only {
            migrations::run(&store).await?;
        }
        Ok(store)
    }

    /// Whether the store was opened read-only (a SQLite file this process
    /// may not write).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The same store, reading time from `clock` (tests drive a manual
    /// clock; the product runs on the wall clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Store {
        self.clock = clock;
        self
    }

    /// The clock this store stamps rows with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Milliseconds since the Unix epoch, by this store's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a write transaction: `BEGIN IMMEDIATE` on SQLite, which takes
    /// the write lock at once (waiting up to the busy timeout) so that a
    /// transaction never fails halfway because another writer got there
    /// first.
    pub async fn write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Begin a write transaction that will append to the audit log. It is
    /// [`Store::write`]: appending an event takes no shared lock any more
    /// (the sequencer, [`log`], places events afterwards); the name stays
    /// to mark the transactions that write evidence.
    pub async fn write_logged(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.write().await
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database error message without a password that a URL may carry.
fn redact(message: &str) -> String {
    // `scheme://user:password@host`: keep the user, hide the password.
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest.find(['/', ' ', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            out.push_str(user);
            if userinfo.contains(':') {
                out.push_str(":***");
            }
            out.push_str(&authority[at..]);
        } else {
            out.push_str(authority);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact("cannot reach postgres://oubli:s3cret@db:5432/x"),
            "cannot reach postgres://oubli:***@db:5432/x"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}

#[cfg(test)]
mod send_checks {
    #[allow(dead_code)]
    fn futures_are_send(s: &super::Store) {
        fn send<T: Send>(_: T) {}
        send(super::Store::open("x"));
        send(s.write());
        send(super::tasks::claim(s, "a", 1, 1));
        send(super::migrations::run(s));
    }
}
