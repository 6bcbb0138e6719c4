//! The check a server runs before a request's handler, as RocketMQ's
//! `PlainPermissionManager.validate`: the global white list passes; then the
//! request must name a known account; the account's own white list passes;
//! otherwise the signature must verify and the account must have the admin
//! flag or permission the request needs. The accounts are re-read when the
//! file changes; a bad file keeps the last good accounts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use mq_protocol::acl::ACCESS_KEY;
use mq_protocol::code::request_code_name;
use mq_protocol::{RemotingCommand, ResponseCode};
use tracing::{info, warn};

use crate::file::{AclConfig, AclError};
use crate::perm::Perm;
use crate::resource::{each_need, is_checked, needs_admin, Resource, Rules};

/// Why a request was refused; the remark names what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub remark: String,
}

impl Refusal {
    fn new(remark: impl Into<String>) -> Refusal {
        Refusal {
            remark: remark.into(),
        }
    }

    /// The NO_PERMISSION (16) response to `request`.
    pub fn into_response(self, request: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::response_to(request, ResponseCode::NO_PERMISSION).with_remark(self.remark)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.remark)
    }
}

/// The file's identity for change detection.
type Stamp = (Option<SystemTime>, u64);

/// Checks requests against the accounts of one `plain_acl.yml`.
#[derive(Debug)]
pub struct Validator {
    rules: Rules,
    path: PathBuf,
    current: RwLock<Arc<AclConfig>>,
    loaded: Mutex<Stamp>,
}

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).map_or((None, 0), |m| (m.modified().ok(), m.len()))
}

impl Validator {
    /// Loads the file at `path`; an error (naming the line) means the server
    /// must not start.
    pub fn load(rules: Rules, path: &Path) -> Result<Validator, AclError> {
        let loaded = stamp(path);
        let config = AclConfig::load(path)?;
        Ok(Validator {
            rules,
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
            loaded: Mutex::new(loaded),
        })
    }

    /// The file this validator reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts in force.
    pub fn config(&self) -> Arc<AclConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file if its modification time or size changed. `Ok(true)`
    /// when new accounts are in force; on `Err` the old ones stay.
    pub fn reload_if_changed(&self) -> Result<bool, AclError> {
        let now = stamp(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if *loaded == now {
            return Ok(false);
        }
        // Remember the bad stamp too, so a broken file is reported once, not
        // every period; the next edit is read again.
        *loaded = now;
        let config = AclConfig::load(&self.path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        Ok(true)
    }

    /// Checks the file every `period` on the current tokio runtime until the
    /// returned task is aborted, logging a bad file with its line.
    pub fn watch(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let validator = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match validator.reload_if_changed() {
                    Ok(true) => info!(path = %validator.path.display(), "ACL accounts reloaded"),
                    Ok(false) => {}
                    Err(e) => warn!("ACL file not reloaded, the last good accounts stay: {e}"),
                }
            }
        })
    }

    /// Checks one request from `remote`; `Err` carries the remark of the
    /// NO_PERMISSION answer.
    pub fn check(&self, remote: IpAddr, request: &RemotingCommand) -> Result<(), Refusal> {
        if !is_checked(self.rules, request.code) {
            return Ok(());
        }
        // Held for this synchronous check only: no Arc clone per request,
        // and a reload waits at most one check.
        let config = self.current.read().unwrap_or_else(|e| e.into_inner());
        if config
            .global_white_remote_addresses
            .iter()
            .any(|p| p.matches(remote))
        {
            return Ok(());
        }
        let Some(access_key) = request.field(ACCESS_KEY) else {
            return Err(Refusal::new(
                "No accessKey is configured: the request is not signed (AccessKey and Signature missing)",
            ));
        };
        let Some(account) = config.accounts.get(access_key) else {
            return Err(Refusal::new(format!(
                "No acl config for accessKey {access_key}"
            )));
        };
        if account.white_remote_address.matches(remote) {
            return Ok(());
        }
        if !account.signing_key().verify_request(request) {
            return Err(Refusal::new(format!(
                "Check signature failed for accessKey={access_key}"
            )));
        }
        if needs_admin(self.rules, request.code) && !account.admin {
            return Err(Refusal::new(format!(
                "Need admin permission for request code={} ({}), but accessKey={access_key} is not admin",
                request.code,
                request_code_name(request.code).unwrap_or("?"),
            )));
        }
        // RocketMQ: an admin without any entries owns everything.
        if account.admin && account.topic_perms.is_empty() && account.group_perms.is_empty() {
            return Ok(());
        }
        each_need(
            request,
            &mut |resource, needed: Perm| {
                let owned = match resource {
                    Resource::Topic(t) => account
                        .topic_perms
                        .get(t)
                        .copied()
                        .unwrap_or(account.default_topic_perm),
                    Resource::Group(g) => account
                        .group_perms
                        .get(g)
                        .copied()
                        .unwrap_or(account.default_group_perm),
                };
                if owned.allows(needed) {
                    Ok(())
                } else {
                    Err(Refusal::new(format!(
                        "No {needed} permission on {resource} for accessKey={access_key} (it has {owned})"
                    )))
                }
            },
            Refusal::new,
        )
    }
}

#[cfg(test)]
mod tests {
    use mq_protocol::acl::sign_request;
    use mq_protocol::request_code as code;

    use super::*;

    const FILE: &str = "\
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: DENY
    topicPerms:
      - T=PUB
      - S=SUB
  - accessKey: consumer1
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    defaultGroupPerm: SUB
    groupPerms:
      - bad=DENY
  - accessKey: rocketmq2
    secretKey: admin-secret
    admin: true
";

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn send(topic: &str, ak: &str, sk: &str) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(code::SEND_MESSAGE_V2)
            .with_field("a", "pg")
            .with_field("b", topic)
            .with_body("hello");
        sign_request(&mut cmd, ak, sk, None);
        cmd
    }

    fn validator(text: &str) -> (tempfile::TempDir, Validator) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        std::fs::write(&path, text).unwrap();
        let v = Validator::load(Rules::Broker, &path).unwrap();
        (dir, v)
    }

    fn refused(v: &Validator, cmd: &RemotingCommand) -> String {
        v.check(local(), cmd).unwrap_err().remark
    }

    #[test]
    fn signature_account_and_permissions() {
        let (_dir, v) = validator(FILE);
        assert!(v
            .check(local(), &send("T", "producer1", "producer-secret"))
            .is_ok());
        let unsigned = RemotingCommand::request(code::SEND_MESSAGE_V2).with_field("b", "T");
        assert!(refused(&v, &unsigned).contains("not signed"));
        assert!(refused(&v, &send("T", "producer1", "wrong-secret")).contains("signature"));
        assert!(refused(&v, &send("T", "nobody11", "x")).contains("nobody11"));
        assert!(refused(&v, &send("S", "producer1", "producer-secret")).contains("PUB"));
        assert!(refused(&v, &send("U", "producer1", "producer-secret")).contains("topic U"));
        // A consumer's retry send follows its group.
        assert!(v
            .check(local(), &send("%RETRY%g", "consumer1", "consumer-secret"))
            .is_ok());
        let denied = refused(&v, &send("%RETRY%bad", "consumer1", "consumer-secret"));
        assert!(denied.contains("group bad"), "{denied}");

        let mut create =
            RemotingCommand::request(code::UPDATE_AND_CREATE_TOPIC).with_field("topic", "N");
        sign_request(&mut create, "producer1", "producer-secret", None);
        assert!(refused(&v, &create).contains("admin"));
        let mut create =
            RemotingCommand::request(code::UPDATE_AND_CREATE_TOPIC).with_field("topic", "N");
        sign_request(&mut create, "rocketmq2", "admin-secret", None);
        assert!(v.check(local(), &create).is_ok());
    }

    #[test]
    fn white_lists_pass_unsigned() {
        let (_dir, v) = validator(&format!(
            "globalWhiteRemoteAddresses:\n  - 10.0.0.*\n{FILE}"
        ));
        let unsigned = RemotingCommand::request(code::SEND_MESSAGE_V2).with_field("b", "T");
        assert!(v.check("10.0.0.3".parse().unwrap(), &unsigned).is_ok());
        assert!(v.check(local(), &unsigned).is_err());
    }

    #[test]
    fn name_server_reads_stay_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.yml");
        std::fs::write(&path, FILE).unwrap();
        let v = Validator::load(Rules::NameServer, &path).unwrap();
        assert!(v
            .check(
                local(),
                &RemotingCommand::request(code::GET_ROUTEINFO_BY_TOPIC)
            )
            .is_ok());
        let mut register = RemotingCommand::request(code::REGISTER_BROKER);
        sign_request(&mut register, "producer1", "producer-secret", None);
        assert!(v
            .check(local(), &register)
            .unwrap_err()
            .remark
            .contains("admin"));
        let mut register = RemotingCommand::request(code::REGISTER_BROKER);
        sign_request(&mut register, "rocketmq2", "admin-secret", None);
        assert!(v.check(local(), &register).is_ok());
    }

    #[test]
    fn reload_takes_a_good_file_and_keeps_the_last_good_one() {
        let (_dir, v) = validator(FILE);
        assert_eq!(v.reload_if_changed(), Ok(false));
        let extra =
            "  - accessKey: newcomer\n    secretKey: newcomer-secret\n    defaultTopicPerm: PUB\n";
        std::fs::write(v.path(), format!("{FILE}{extra}")).unwrap();
        assert_eq!(v.reload_if_changed(), Ok(true));
        assert!(v
            .check(local(), &send("T", "newcomer", "newcomer-secret"))
            .is_ok());
        std::fs::write(
            v.path(),
            format!("{FILE}{extra}    defaultGroupPerm: ALL\n"),
        )
        .unwrap();
        let err = v.reload_if_changed().unwrap_err();
        assert!(err.to_string().contains(":20:"), "{err}");
        assert!(v
            .check(local(), &send("T", "newcomer", "newcomer-secret"))
            .is_ok());
    }
}
