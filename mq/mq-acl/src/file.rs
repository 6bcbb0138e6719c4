//! The accounts file `plain_acl.yml` in RocketMQ 4.x's format and its
//! checks (`PlainPermissionManager.checkPlainAccessConfig`,
//! `Permission.checkResourcePerms`, `AclUtils.verify`). Every error names
//! the line it is about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mq_protocol::acl::SigningKey;
use serde::Deserialize;
use thiserror::Error;

use crate::address::AddressPattern;
use crate::perm::Perm;

/// Where RocketMQ looks for the file under its home folder
/// (the `rocketmq.acl.plain.file` system property's default).
pub const DEFAULT_FILE: &str = "conf/plain_acl.yml";

/// Key lengths RocketMQ refuses (`length() <= 6`).
const MIN_KEY_LEN: usize = 7;

/// Why an accounts file could not be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AclError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    /// The file's content is wrong at `line` (1-based; 0 when YAML knows none).
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

/// The ACL file path: `configured` when set (absolute, or relative to
/// `home`), otherwise `home`/[`DEFAULT_FILE`] as RocketMQ.
pub fn resolve_path(home: &str, configured: &str) -> PathBuf {
    let file = if configured.trim().is_empty() {
        DEFAULT_FILE
    } else {
        configured.trim()
    };
    let path = Path::new(file);
    if path.is_absolute() || home.is_empty() {
        path.to_path_buf()
    } else {
        Path::new(home).join(path)
    }
}

/// One account as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAccount {
    access_key: Option<Scalar>,
    secret_key: Option<Scalar>,
    white_remote_address: Option<Scalar>,
    #[serde(default)]
    admin: bool,
    default_topic_perm: Option<String>,
    default_group_perm: Option<String>,
    #[serde(default)]
    topic_perms: Option<Vec<String>>,
    #[serde(default)]
    group_perms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    #[serde(default)]
    global_white_remote_addresses: Option<Vec<Scalar>>,
    #[serde(default)]
    accounts: Option<Vec<RawAccount>>,
}

/// A YAML scalar read as text: `secretKey: 12345678` is a number to YAML but
/// a key to RocketMQ.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// One account, checked. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Account {
    /// The access key requests name in [`mq_protocol::acl::ACCESS_KEY`].
    pub access_key: String,
    /// The HMAC key of the account's signatures.
    pub secret_key: String,
    /// Requests from these addresses pass without signature or permission
    /// checks (RocketMQ's account white list).
    pub white_remote_address: AddressPattern,
    /// Admin accounts may run the admin request codes and own every resource
    /// they have no entry for.
    pub admin: bool,
    /// Permission on topics without an entry (RocketMQ's default: DENY).
    pub default_topic_perm: Perm,
    /// Permission on groups without an entry (RocketMQ's default: DENY).
    pub default_group_perm: Perm,
    /// Per-topic permissions.
    pub topic_perms: HashMap<String, Perm>,
    /// Per-group permissions, keyed by group name (RocketMQ keys them by the
    /// group's retry topic; a retry topic is looked up by its group here).
    pub group_perms: HashMap<String, Perm>,
    /// `secret_key` keyed into HMAC-SHA1 once, when the file is read, so a
    /// request's check does not derive it again.
    signing_key: SigningKey,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("white_remote_address", &self.white_remote_address)
            .field("admin", &self.admin)
            .field("default_topic_perm", &self.default_topic_perm)
            .field("default_group_perm", &self.default_group_perm)
            .field("topic_perms", &self.topic_perms)
            .field("group_perms", &self.group_perms)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The keyed secret requests of this account are verified with.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

/// The whole file, checked: what the validator reads on every request.
#[derive(Debug, Clone, Default)]
pub struct AclConfig {
    /// Requests from these addresses pass unchecked (RocketMQ's global white list).
    pub global_white_remote_addresses: Vec<AddressPattern>,
    /// Accounts by access key.
    pub accounts: HashMap<String, Account>,
}

impl AclConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<AclConfig, AclError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        AclConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and checks file content; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<AclConfig, AclError> {
        let invalid = |line: usize, reason: String| AclError::Invalid {
            path: origin.to_string(),
            line,
            reason,
        };
        let raw: RawFile = if text.trim().is_empty() {
            RawFile {
                global_white_remote_addresses: None,
                accounts: None,
            }
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let line = e.location().map_or(0, |l| l.line());
                invalid(line, e.to_string())
            })?
        };
        let mut config = AclConfig::default();
        for addr in raw.global_white_remote_addresses.unwrap_or_default() {
            let addr = addr.text();
            let pattern =
                AddressPattern::parse(&addr).map_err(|e| invalid(line_of(text, &addr, 0), e))?;
            config.global_white_remote_addresses.push(pattern);
        }
        let mut from = 0;
        for mut raw in raw.accounts.unwrap_or_default() {
            let access_key = raw.access_key.take().map(Scalar::text).unwrap_or_default();
            let line = line_of(text, "accessKey", from);
            from = line;
            let account = account(raw, access_key, text, line).map_err(|(l, r)| invalid(l, r))?;
            if config.accounts.contains_key(&account.access_key) {
                return Err(invalid(
                    line,
                    format!("accessKey {} appears twice", account.access_key),
                ));
            }
            config.accounts.insert(account.access_key.clone(), account);
        }
        Ok(config)
    }
}

/// Checks one account; an error carries its line and reason.
fn account(
    raw: RawAccount,
    access_key: String,
    text: &str,
    line: usize,
) -> Result<Account, (usize, String)> {
    let secret_key = raw.secret_key.map(Scalar::text).unwrap_or_default();
    if access_key.len() < MIN_KEY_LEN {
        return Err((
            line,
            format!("accessKey {access_key:?} must be longer than 6 characters"),
        ));
    }
    if secret_key.len() < MIN_KEY_LEN {
        return Err((
            line,
            format!("secretKey of {access_key} must be longer than 6 characters"),
        ));
    }
    let here = |needle: &str| line_of(text, needle, line.saturating_sub(1));
    let white = raw
        .white_remote_address
        .map(Scalar::text)
        .unwrap_or_default();
    let white_remote_address =
        AddressPattern::parse(&white).map_err(|e| (here("whiteRemoteAddress"), e))?;
    let default_perm = |value: Option<String>, key: &str| match value {
        None => Ok(Perm::DENY),
        Some(v) => Perm::parse(&v).ok_or_else(|| {
            (
                here(key),
                format!("{key} {v:?} is not DENY, PUB, SUB or PUB|SUB"),
            )
        }),
    };
    Ok(Account {
        default_topic_perm: default_perm(raw.default_topic_perm, "defaultTopicPerm")?,
        default_group_perm: default_perm(raw.default_group_perm, "defaultGroupPerm")?,
        topic_perms: resource_perms(raw.topic_perms, "topic", &here)?,
        group_perms: resource_perms(raw.group_perms, "group", &here)?,
        signing_key: SigningKey::new(&secret_key),
        access_key,
        secret_key,
        white_remote_address,
        admin: raw.admin,
    })
}

/// `name=PERM` entries of `topicPerms` or `groupPerms`.
fn resource_perms(
    entries: Option<Vec<String>>,
    kind: &str,
    here: &dyn Fn(&str) -> usize,
) -> Result<HashMap<String, Perm>, (usize, String)> {
    let mut perms = HashMap::new();
    for entry in entries.unwrap_or_default() {
        let parsed = entry
            .split_once('=')
            .filter(|(name, _)| !name.trim().is_empty())
            .and_then(|(name, perm)| Some((name.trim(), Perm::parse(perm)?)));
        match parsed {
            Some((name, perm)) => {
                perms.insert(name.to_string(), perm);
            }
            None => {
                return Err((
                    here(&entry),
                    format!(
                        "{kind} permission {entry:?} is not NAME=PERM (PERM one of DENY, PUB, SUB, PUB|SUB)"
                    ),
                ))
            }
        }
    }
    Ok(perms)
}

/// The 1-based line of the first occurrence of `needle` at or after line
/// `from` (0-based), or 0 when it is not there.
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .map_or(0, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
";

    #[test]
    fn rocketmq_sample_file_loads() {
        let config = AclConfig::parse(SAMPLE, "plain_acl.yml").unwrap();
        assert_eq!(config.global_white_remote_addresses.len(), 2);
        let a = &config.accounts["RocketMQ"];
        assert_eq!(a.secret_key, "12345678");
        assert!(!a.admin);
        assert_eq!(a.default_group_perm, Perm::SUB);
        assert_eq!(a.topic_perms["topicB"], Perm::PUB_SUB);
        assert_eq!(a.group_perms["groupA"], Perm::DENY);
        let admin = &config.accounts["rocketmq2"];
        assert!(admin.admin);
        assert_eq!(admin.default_topic_perm, Perm::DENY);
        // The keyed secret is the file's.
        assert_eq!(a.signing_key().sign(b"abc"), "BOigG5+Fiv0354g5bQuwOUOPMp0=");
    }

    #[test]
    fn debug_leaves_secrets_out() {
        let config = AclConfig::parse(
            &SAMPLE.replace("secretKey: 12345678", "secretKey: s3cr3t-key"),
            "plain_acl.yml",
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("RocketMQ"), "{shown}");
        assert!(!shown.contains("s3cr3t-key"), "{shown}");
    }

    fn error_line(text: &str) -> usize {
        match AclConfig::parse(text, "f").unwrap_err() {
            AclError::Invalid { line, .. } => line,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn errors_name_the_line() {
        let bad_perm = SAMPLE.replace("topicC=SUB", "topicC=READ");
        assert_eq!(error_line(&bad_perm), 15);
        let bad_addr = SAMPLE.replace("192.168.1.*", "192.168.1.300");
        assert_eq!(error_line(&bad_addr), 24);
        let short = SAMPLE.replace("rocketmq2", "rmq2");
        assert_eq!(error_line(&short), 22);
        let yaml = SAMPLE.replace("    admin: true", "  admin: [true");
        assert!(error_line(&yaml) >= 26, "{yaml}");
        let err = AclConfig::parse(&bad_perm, "conf/plain_acl.yml").unwrap_err();
        assert!(
            err.to_string().starts_with("conf/plain_acl.yml:15: "),
            "{err}"
        );
    }

    #[test]
    fn path_rules() {
        assert_eq!(
            resolve_path("/opt/rmq", ""),
            PathBuf::from("/opt/rmq/conf/plain_acl.yml")
        );
        assert_eq!(
            resolve_path("/opt/rmq", "/etc/acl.yml"),
            PathBuf::from("/etc/acl.yml")
        );
        assert_eq!(resolve_path("", "acl.yml"), PathBuf::from("acl.yml"));
    }
}
