//! Sessions: who is looking, and the CSRF token of their forms.
//!
//! Every visitor gets a session (cookie `MQCONSOLE_SESSION`, HttpOnly,
//! SameSite=Strict, 256 random bits), before logging in too, so that the
//! log-in form carries a CSRF token like every other form. Logging in
//! replaces the session with a new one (a token seen before the log-in is
//! worth nothing after it). A session ends after its idle timeout; the
//! table is bounded, and when it is full the sessions nearest to expiry go
//! first, those not logged in before those logged in.
//!
//! Passwords and tokens are compared in constant time ([`same_secret`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// The session cookie.
pub const COOKIE: &str = "MQCONSOLE_SESSION";

/// At most this many sessions at once.
const MAX_SESSIONS: usize = 10_000;

/// A session not logged in lasts at most this long idle.
const ANONYMOUS_IDLE: Duration = Duration::from_secs(10 * 60);

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not logged in.
    Anonymous,
    /// Logged in as this operator.
    Operator { name: String, admin: bool },
    /// Nobody needs to log in (`loginRequired=false`): may do everything.
    Open,
}

/// One session as a request sees it.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session id (the cookie's value).
    pub id: String,
    pub identity: Identity,
    /// The token every POST form of this session carries.
    pub csrf: String,
    /// A message left for the next page (after a form's redirect).
    pub flash: Option<Flash>,
    /// Which configured name server this session's pages talk to.
    pub namesrv: usize,
}

impl Viewer {
    /// May change the cluster.
    pub fn is_admin(&self) -> bool {
        matches!(
            self.identity,
            Identity::Open | Identity::Operator { admin: true, .. }
        )
    }

    pub fn is_logged_in(&self) -> bool {
        !matches!(self.identity, Identity::Anonymous)
    }

    pub fn user_name(&self) -> Option<&str> {
        match &self.identity {
            Identity::Operator { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// The outcome of a form, shown once on the page it redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

struct Entry {
    identity: Identity,
    csrf: String,
    flash: Option<Flash>,
    namesrv: usize,
    expires: Instant,
}

/// The session table, shared by every request.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    timeout: Duration,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal secrets, compared in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Sessions {
    /// A table whose logged-in sessions end after `timeout` idle.
    pub fn new(timeout: Duration) -> Sessions {
        Sessions {
            inner: Arc::new(Mutex::new(HashMap::new())),
            timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn idle(&self, identity: &Identity) -> Duration {
        match identity {
            Identity::Anonymous => ANONYMOUS_IDLE.min(self.timeout),
            _ => self.timeout,
        }
    }

    /// The live session with this id, its idle time restarted and its
    /// flash taken; none when unknown or expired.
    pub fn touch(&self, id: &str) -> Option<Viewer> {
        let now = Instant::now();
        let mut table = self.lock();
        let entry = table.get(id)?;
        if entry.expires <= now {
            table.remove(id);
            return None;
        }
        let idle = self.idle(&entry.identity);
        let entry = table.get_mut(id)?;
        entry.expires = now + idle;
        Some(Viewer {
            id: id.to_owned(),
            identity: entry.identity.clone(),
            csrf: entry.csrf.clone(),
            flash: entry.flash.take(),
            namesrv: entry.namesrv,
        })
    }

    /// A new session for `identity`.
    pub fn create(&self, identity: Identity) -> Viewer {
        let now = Instant::now();
        let id = random_token();
        let csrf = random_token();
        let mut table = self.lock();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, e| e.expires > now);
        }
        if table.len() >= MAX_SESSIONS {
            // Full of live sessions: drop the tenth nearest to expiry,
            // anonymous ones first.
            let mut order: Vec<(bool, Instant, String)> = table
                .iter()
                .map(|(k, e)| (e.identity != Identity::Anonymous, e.expires, k.clone()))
                .collect();
            order.sort();
            for (_, _, k) in order.into_iter().take(MAX_SESSIONS / 10) {
                table.remove(&k);
            }
        }
        let expires = now + self.idle(&identity);
        table.insert(
            id.clone(),
            Entry {
                identity: identity.clone(),
                csrf: csrf.clone(),
                flash: None,
                namesrv: 0,
                expires,
            },
        );
        Viewer {
            id,
            identity,
            csrf,
            flash: None,
            namesrv: 0,
        }
    }

    /// Ends the session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Leaves `flash` for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.flash = Some(flash);
        }
    }

    /// The flash left for the session's next page, still left there (the
    /// audit log reads what a form came to).
    pub fn peek_flash(&self, id: &str) -> Option<Flash> {
        self.lock().get(id).and_then(|entry| entry.flash.clone())
    }

    /// Points the session's pages at the configured name server `index`.
    pub fn set_namesrv(&self, id: &str, index: usize) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.namesrv = index;
        }
    }

    /// How many sessions are held (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `Set-Cookie` value of session `id`.
pub fn cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_tokens_differ() {
        let sessions = Sessions::new(Duration::from_millis(500));
        let a = sessions.create(Identity::Open);
        let b = sessions.create(Identity::Open);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.id.len(), 64);
        assert!(sessions.touch(&a.id).is_some());
        std::thread::sleep(Duration::from_millis(800));
        assert!(sessions.touch(&a.id).is_none());
        assert!(sessions.touch("nonsense").is_none());
    }

    #[test]
    fn flash_is_shown_once() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let a = sessions.create(Identity::Anonymous);
        sessions.set_flash(
            &a.id,
            Flash {
                ok: true,
                text: "hi".into(),
            },
        );
        assert_eq!(sessions.touch(&a.id).unwrap().flash.unwrap().text, "hi");
        assert!(sessions.touch(&a.id).unwrap().flash.is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let operator = sessions.create(Identity::Operator {
            name: "a".into(),
            admin: true,
        });
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.create(Identity::Anonymous);
        }
        assert!(sessions.len() <= MAX_SESSIONS);
        assert!(
            sessions.touch(&operator.id).is_some(),
            "logged-in sessions go last"
        );
    }

    #[test]
    fn secrets_and_cookies() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert_eq!(
            cookie_value("a=1; MQCONSOLE_SESSION=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", COOKIE), None);
        assert!(cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
