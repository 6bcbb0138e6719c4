//! Logins and passwords: what a customer may choose, and how a password is
//! kept (an argon2id PHC string) and checked.
//!
//! Hashing costs about 19 MiB and a few tens of milliseconds of one core by
//! design, so it runs on the blocking pool, at most [`MAX_CONCURRENT_HASHES`]
//! at a time ([`Hasher`]): a burst of log-ins waits instead of taking the
//! machine's memory.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use thiserror::Error;
use tokio::sync::Semaphore;

/// The shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The shortest and longest login, in characters.
pub const LOGIN_CHARS: std::ops::RangeInclusive<usize> = 3..=32;
/// Hashes computed at once; more wait their turn.
pub const MAX_CONCURRENT_HASHES: usize = 4;

/// Why a login, password or stored hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordError {
    #[error("login must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'")]
    Login,
    #[error("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    Length,
    #[error("not an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash): {0}")]
    Hash(String),
}

/// A login as it can be stored: 3 to 32 characters of `a-z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Login(String);

impl Login {
    pub fn parse(login: &str) -> Result<Login, PasswordError> {
        let valid = LOGIN_CHARS.contains(&login.len())
            && login
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
        if valid {
            Ok(Login(login.to_owned()))
        } else {
            Err(PasswordError::Login)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Refuses a password shorter than [`MIN_PASSWORD_CHARS`] or longer than
/// [`MAX_PASSWORD_CHARS`].
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(PasswordError::Length)
    }
}

/// The argon2id PHC string of `password` (a fresh random salt, the crate's
/// default parameters, OWASP's m=19456 KiB, t=2, p=1). Blocks for the
/// hash: call it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password(password)?;
    Ok(hash_unchecked(password))
}

fn hash_unchecked(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source works");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("the default parameters hash any password")
        .to_string()
}

/// A stored password hash, checked to be an argon2id PHC string with valid
/// parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash(String);

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredHash(***)")
    }
}

impl StoredHash {
    pub fn parse(phc: &str) -> Result<StoredHash, PasswordError> {
        let hash = PasswordHash::new(phc).map_err(|e| PasswordError::Hash(e.to_string()))?;
        if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
            return Err(PasswordError::Hash(format!(
                "algorithm {} is not argon2id",
                hash.algorithm
            )));
        }
        argon2::Params::try_from(&hash).map_err(|e| PasswordError::Hash(e.to_string()))?;
        if hash.hash.is_none() || hash.salt.is_none() {
            return Err(PasswordError::Hash("no salt or hash".to_owned()));
        }
        Ok(StoredHash(phc.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the one hashed, compared in constant time by
    /// the argon2 crate. Blocks for the hash.
    pub fn verify(&self, password: &str) -> bool {
        PasswordHash::new(&self.0).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }
}

/// The hash a log-in for an unknown login is checked against, so that it
/// costs what a wrong password costs and timing does not tell logins apart.
/// Its password is random and never kept.
pub fn dummy_hash() -> &'static StoredHash {
    static DUMMY: OnceLock<StoredHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).expect("the operating system's random source works");
        let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        StoredHash(hash_unchecked(&password))
    })
}

/// Runs password hashing on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)),
        }
    }
}

impl Hasher {
    /// `work` on a blocking thread once a hashing slot is free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(work)
            .await
            .expect("password hashing does not panic")
    }

    /// [`hash_password`] off the async threads.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        check_password(password)?;
        let password = password.to_owned();
        Ok(self.run(move || hash_unchecked(&password)).await)
    }

    /// Whether `password` matches `stored`; with no stored hash (an unknown
    /// login, a malformed password) the same work is done against
    /// [`dummy_hash`] and the answer is false.
    pub async fn verify(&self, stored: Option<StoredHash>, password: &str) -> bool {
        let well_formed = check_password(password).is_ok();
        let password = if well_formed {
            password.to_owned()
        } else {
            String::new()
        };
        self.run(move || match stored {
            Some(stored) if well_formed => stored.verify(&password),
            _ => {
                let _ = dummy_hash().verify(&password);
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_short_lower_case_names() {
        for good in ["ann", "a.b-c_d", "user123", &"x".repeat(32)] {
            assert_eq!(Login::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "ab",
            "Ann",
            "ann smith",
            "ann@example",
            "ünï",
            &"x".repeat(33),
            "a:b",
            "a=b",
        ] {
            assert_eq!(Login::parse(bad), Err(PasswordError::Login), "{bad}");
        }
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_and_verified() {
        assert_eq!(hash_password("short"), Err(PasswordError::Length));
        assert_eq!(hash_password(&"p".repeat(129)), Err(PasswordError::Length));
        // Characters, not bytes: 8 two-byte characters are enough.
        assert!(check_password("éééééééé").is_ok());

        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
        let stored = StoredHash::parse(&phc).unwrap();
        assert!(stored.verify("correct horse"));
        assert!(!stored.verify("correct horsf"));
        assert!(!format!("{stored:?}").contains("argon2"));
        assert!(dummy_hash()
            .as_str()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn only_argon2id_phc_strings_are_stored_hashes() {
        let phc = hash_password("correct horse").unwrap();
        let argon2i = phc.replacen("argon2id", "argon2i", 1);
        for bad in [
            "",
            "plain-password",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            argon2i.as_str(),
            "$2b$12$abcdefghijklmnopqrstuv",
        ] {
            assert!(StoredHash::parse(bad).is_err(), "{bad}");
        }
    }
}
