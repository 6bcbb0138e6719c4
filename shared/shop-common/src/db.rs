//! The database of a service: SQLite or PostgreSQL chosen by URL, behind one
//! `sqlx::AnyPool`, with that database's migrations.
//!
//! Queries are written once for both: `$1`-style placeholders, integer cents
//! for money, text for ids and statuses, integer milliseconds for time.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Executor};
use thiserror::Error;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(DbKind::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(DbKind::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(redact(url)))
        }
    }
}

/// A service's migrations for each database, embedded with `sqlx::migrate!`.
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// The [`Migrations`] embedded from a SQLite and a PostgreSQL folder
/// (paths relative to the calling crate, as `sqlx::migrate!` takes them).
#[macro_export]
macro_rules! migrations {
    ($sqlite:tt, $postgres:tt) => {{
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!($sqlite);
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!($postgres);
        $crate::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        }
    }};
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("unsupported database URL {0} (use sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    #[error("cannot create the folder {path} of the SQLite database: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("migrations failed on {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A connection pool and the kind of database behind it.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
}

impl Db {
    /// Opens a pool. A SQLite file is created if missing and put in WAL mode
    /// with a busy timeout, so that concurrent writers wait instead of failing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let kind = DbKind::from_url(url)?;
        if kind == DbKind::Sqlite {
            create_sqlite_dir(url)?;
        }
        let url_for_sqlx = match kind {
            DbKind::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options: AnyConnectOptions =
            url_for_sqlx.parse().map_err(|source| DbError::Connect {
                url: redact(url),
                source,
            })?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                url: redact(url),
                source,
            })?;
        Ok(Db { pool, kind })
    }

    /// Connects and runs the migrations for this kind of database.
    pub async fn connect_and_migrate(
        url: &str,
        max_connections: u32,
        migrations: Migrations,
    ) -> Result<Self, DbError> {
        let db = Self::connect(url, max_connections).await?;
        db.migrate(migrations, url).await?;
        Ok(db)
    }

    async fn migrate(&self, migrations: Migrations, url: &str) -> Result<(), DbError> {
        let migrator = match self.kind {
            DbKind::Sqlite => migrations.sqlite,
            DbKind::Postgres => migrations.postgres,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| DbError::Migrate {
                url: redact(url),
                source,
            })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `work` in one transaction: committed when it succeeds, rolled
    /// back (dropped) when it fails. For the `*_in` functions that take the
    /// caller's connection, so that a caller without a transaction of its
    /// own gets one.
    pub async fn in_transaction<T, E>(
        &self,
        work: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<sqlx::Error>,
    {
        let mut tx = self.pool.begin().await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A SQLite file is created when missing, but not its folder (a default
/// such as `sqlite://data/goods.db` lives in `data/`).
fn create_sqlite_dir(url: &str) -> Result<(), DbError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Serialises work on one order across transactions on PostgreSQL (an
/// advisory lock held until the transaction ends), so that a reservation and
/// the cancellation of the same order cannot interleave unseen. SQLite has a
/// single writer already; there this does nothing.
pub async fn lock_order(conn: &mut AnyConnection, order_id: uuid::Uuid) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "PostgreSQL" {
        let (high, low) = order_id.as_u64_pair();
        // The same bits as a signed key; a collision only serialises two orders.
        let key = i64::from_ne_bytes((high ^ low).to_ne_bytes());
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_from_url() {
        assert_eq!(DbKind::from_url("sqlite://a.db").unwrap(), DbKind::Sqlite);
        assert_eq!(
            DbKind::from_url("postgres://u@h/db").unwrap(),
            DbKind::Postgres
        );
        assert_eq!(
            DbKind::from_url("postgresql://u@h/db").unwrap(),
            DbKind::Postgres
        );
        assert!(
            matches!(DbKind::from_url("mysql://u:pw@h/db"), Err(DbError::UnsupportedUrl(u)) if u == "mysql://u:***@h/db")
        );
    }

    #[test]
    fn sqlite_folders_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/shop.db");
        create_sqlite_dir(&format!("sqlite://{}?mode=rwc", nested.display())).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        create_sqlite_dir("sqlite::memory:").unwrap();
        create_sqlite_dir("postgres://h/db").unwrap();
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
