//! Sessions: the tokens `POST /auth/login` hands out, kept as their
//! SHA-256 (`shop_common::auth::token_hash`) in the `sessions` table with
//! their principal, expiry and revocation; [`DbSessions`], the
//! authenticator the user service checks bearer tokens with (every other
//! service asks it over `POST /internal/sessions/verify`); and
//! [`LoginLimiter`], which locks a login after repeated failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shop_common::auth::{
    looks_like_token, token_hash, Authenticator, AuthenticatorError, Principal, SessionView,
};
use shop_common::{now_ms, Db};
use sqlx::Row;

use crate::operators::Operators;

/// Sessions expired longer ago than this are deleted by [`purge_expired`].
pub const KEEP_EXPIRED: Duration = Duration::from_secs(24 * 3600);
/// How often the service runs [`purge_expired`].
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Stores a new session of `principal` for `token`, valid until
/// `expires_at` (ms since the epoch).
pub async fn open(
    db: &Db,
    token: &str,
    principal: &Principal,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let (user_id, operator) = match principal {
        Principal::Customer { user_id } => (Some(*user_id), None),
        Principal::Operator { login } => (None, Some(login.as_str())),
    };
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, operator_login, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(token))
    .bind(user_id)
    .bind(operator)
    .bind(now_ms())
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Revokes the session of `token`; whether it was live.
pub async fn revoke(db: &Db, token: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(token_hash(token))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes sessions that expired before `before` (ms since the epoch);
/// how many.
pub async fn purge_expired(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(before)
        .execute(db.pool())
        .await?
        .rows_affected())
}

/// Checks bearer tokens against the `sessions` table: unknown, expired and
/// revoked tokens are invalid, and so is an operator's session once the
/// operator is no longer configured.
#[derive(Clone)]
pub struct DbSessions {
    pub db: Db,
    pub operators: Operators,
}

impl DbSessions {
    /// The live session of `token`, if any.
    pub async fn lookup(&self, token: &str) -> Result<Option<SessionView>, sqlx::Error> {
        if !looks_like_token(token) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT user_id, operator_login, expires_at FROM sessions \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash(token))
        .bind(now_ms())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user_id: Option<i64> = row.try_get("user_id")?;
        let operator: Option<String> = row.try_get("operator_login")?;
        let principal = match (user_id, operator) {
            (Some(user_id), None) => Principal::Customer { user_id },
            (None, Some(login)) if self.operators.contains(&login) => Principal::Operator { login },
            _ => return Ok(None),
        };
        Ok(Some(SessionView {
            principal,
            expires_at: row.try_get("expires_at")?,
        }))
    }
}

#[mq_client::async_trait]
impl Authenticator for DbSessions {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthenticatorError> {
        match self.lookup(token).await {
            Ok(Some(view)) => Ok(view.principal),
            Ok(None) => Err(AuthenticatorError::Invalid),
            Err(e) => Err(AuthenticatorError::Unavailable(e.to_string())),
        }
    }
}

/// The most logins whose failures are remembered; beyond, expired entries
/// are dropped, and if that is not enough the oldest half.
const LIMITER_CAPACITY: usize = 100_000;

/// Failed log-ins per login, in memory: `max_failures` in a row lock the
/// login for `lockout` (429 with `Retry-After`), whether the login exists
/// or not, so the lock tells nothing about it either. A success clears the
/// count; failures older than `lockout` are forgotten. One process's
/// memory: a restart forgets, and several user-service processes would
/// each count on their own.
pub struct LoginLimiter {
    max_failures: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, lockout: Duration) -> LoginLimiter {
        LoginLimiter {
            max_failures,
            lockout,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The key of `login`: bounded, so a long made-up login costs nothing.
    fn key(login: &str) -> String {
        login.chars().take(64).collect()
    }

    /// `Err(wait)` while `login` is locked.
    pub fn check(&self, login: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&Self::key(login)).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failed log-in; `Some(wait)` when it locked the login.
    pub fn failed(&self, login: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= LIMITER_CAPACITY {
            let lockout = self.lockout;
            failures
                .retain(|_, f| f.locked_until.is_some_and(|u| u > now) || now - f.last < lockout);
            if failures.len() >= LIMITER_CAPACITY {
                let mut by_age: Vec<Instant> = failures.values().map(|f| f.last).collect();
                by_age.sort_unstable();
                let cut = by_age[by_age.len() / 2];
                failures.retain(|_, f| f.last > cut);
            }
        }
        let entry = failures.entry(Self::key(login)).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        let lock_over = entry.locked_until.is_some_and(|u| u <= now);
        if lock_over || now - entry.last >= self.lockout {
            *entry = Failures {
                count: 0,
                last: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.max_failures {
            entry.locked_until = Some(now + self.lockout);
            return Some(self.lockout);
        }
        None
    }

    /// A successful log-in clears `login`'s failures.
    pub fn succeeded(&self, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&Self::key(login));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_a_row_lock_a_login_for_the_lockout() {
        let limiter = LoginLimiter::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        for n in 0..4 {
            assert_eq!(limiter.failed("ann", t0 + Duration::from_secs(n)), None);
            assert!(limiter.check("ann", t0).is_ok());
        }
        assert_eq!(
            limiter.failed("ann", t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            limiter.check("ann", t0 + Duration::from_secs(14)),
            Err(Duration::from_secs(50))
        );
        assert!(limiter.check("bob", t0).is_ok(), "per login");
        // After the lockout the count starts again.
        let later = t0 + Duration::from_secs(65);
        assert!(limiter.check("ann", later).is_ok());
        assert_eq!(limiter.failed("ann", later), None);

        // A success clears the count; old failures are forgotten.
        for n in 0..4 {
            limiter.failed("cy", t0 + Duration::from_secs(n));
        }
        limiter.succeeded("cy");
        assert_eq!(limiter.failed("cy", t0 + Duration::from_secs(5)), None);
        for n in 0..3 {
            limiter.failed("di", t0 + Duration::from_secs(n));
        }
        let much_later = t0 + Duration::from_secs(200);
        assert_eq!(limiter.failed("di", much_later), None);
        assert_eq!(limiter.failed("di", much_later), None);
    }

    #[test]
    fn tokens_are_checked_for_form_first() {
        let token = shop_common::auth::new_token();
        assert!(looks_like_token(&token));
        assert!(!looks_like_token("test-customer-7"));
        assert!(!looks_like_token(&token.to_uppercase()));
        assert!(!looks_like_token(&token[..token.len() - 1]));
    }
}
