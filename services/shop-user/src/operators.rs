//! Operators: accounts configured at start (key `operators_file`), never
//! created over the API.
//!
//! The file is `.properties` text, one `login=<argon2id PHC string>` line
//! per operator, `#` comments allowed:
//!
//! ```text
//! # made with: shop-user hash-password < password.txt
//! ops=$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$...
//! ```
//!
//! A line that is not a valid login with an argon2id hash stops start-up
//! with an error naming the file and the line. Operators log in with
//! `POST /auth/login` like customers and are given `Principal::Operator`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use shop_common::config::{ConfigError, Source};

pub use crate::password::hash_password;
use crate::password::{Login, StoredHash};

/// The configured operators: login to password hash.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Operators {
    accounts: Arc<BTreeMap<Login, StoredHash>>,
}

/// Shows the logins only.
impl std::fmt::Debug for Operators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.accounts.keys().map(Login::as_str))
            .finish()
    }
}

impl Operators {
    /// Operators from `(login, PHC string)` pairs (tests, and the
    /// all-in-one runner that writes the file).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Operators, String> {
        let mut accounts = BTreeMap::new();
        for (login, phc) in entries {
            let login = Login::parse(login).map_err(|e| format!("{login:?}: {e}"))?;
            let hash = StoredHash::parse(phc).map_err(|e| format!("{login}: {e}"))?;
            if accounts.insert(login.clone(), hash).is_some() {
                return Err(format!("{login} is listed twice"));
            }
        }
        Ok(Operators {
            accounts: Arc::new(accounts),
        })
    }

    /// Reads `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Operators, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let entries = props::parse(&text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        let mut accounts = BTreeMap::new();
        for entry in entries {
            let refuse = |reason: String| ConfigError::Invalid {
                key: "operators_file".to_owned(),
                value: entry.key.clone(),
                origin: Source::File {
                    path: path.to_owned(),
                    line: entry.line,
                },
                reason,
            };
            let login = Login::parse(&entry.key)
                .map_err(|e| refuse(format!("operator {:?}: {e}", entry.key)))?;
            let hash = StoredHash::parse(&entry.value).map_err(|e| {
                refuse(format!(
                    "operator {login}: {e} (make one with `shop-user hash-password`)"
                ))
            })?;
            if accounts.insert(login.clone(), hash).is_some() {
                return Err(refuse(format!("operator {login} is listed twice")));
            }
        }
        Ok(Operators {
            accounts: Arc::new(accounts),
        })
    }

    /// The password hash of operator `login`.
    pub fn get(&self, login: &str) -> Option<&StoredHash> {
        let login = Login::parse(login).ok()?;
        self.accounts.get(&login)
    }

    pub fn contains(&self, login: &str) -> bool {
        self.get(login).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn logins(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(Login::as_str)
    }
}

/// The `operators_file` line of operator `login` with `password`: what the
/// all-in-one runner writes on its first run. Blocks for the hash.
pub fn operator_line(login: &str, password: &str) -> Result<String, String> {
    let login = Login::parse(login).map_err(|e| e.to_string())?;
    let hash = hash_password(password).map_err(|e| e.to_string())?;
    Ok(format!("{login}={hash}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_file_is_read_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operators.properties");
        let line = operator_line("ops", "operator-password").unwrap();
        std::fs::write(&path, format!("# operators\n\n{line}")).unwrap();
        let operators = Operators::load(&path).unwrap();
        assert_eq!(operators.logins().collect::<Vec<_>>(), ["ops"]);
        assert!(operators.get("ops").unwrap().verify("operator-password"));
        assert!(!format!("{operators:?}").contains("argon2"));

        for (text, line, needle) in [
            (format!("{line}eve=plain-text-password\n"), 2, "argon2id"),
            (format!("# x\nBad Login={}", &line[4..]), 2, "operator"),
            (format!("{line}{line}"), 2, "twice"),
            (
                "ops=$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\n".to_owned(),
                1,
                "argon2id",
            ),
        ] {
            std::fs::write(&path, &text).unwrap();
            let err = Operators::load(&path).unwrap_err().to_string();
            let at = format!("{}:{line}", path.display());
            assert!(
                err.contains("operators_file") && err.contains(&at) && err.contains(needle),
                "{text}: {err}"
            );
        }
        let missing = Operators::load(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none"), "{missing}");
    }
}
