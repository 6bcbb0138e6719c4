//! The account a client signs its requests with when brokers and name
//! servers have ACL on (RocketMQ's `SessionCredentials` with the
//! `AclClientRPCHook`), and where RocketMQ's tools find it: the
//! environment, else `$ROCKETMQ_HOME/conf/tools.yml`.
//!
//! The signature itself is [`mq_protocol::acl::sign_request`]; this module
//! only holds the keys and loads them.

use std::fmt;
use std::path::{Path, PathBuf};

use mq_protocol::acl::Signer;
use mq_protocol::RemotingCommand;

use crate::error::{ClientError, Result};

/// Environment variable with the access key the tools sign with.
pub const ACCESS_KEY_ENV: &str = "ROCKETMQ_ACCESS_KEY";
/// Environment variable with the secret key the tools sign with.
pub const SECRET_KEY_ENV: &str = "ROCKETMQ_SECRET_KEY";
/// Environment variable with an optional security token.
pub const SECURITY_TOKEN_ENV: &str = "ROCKETMQ_SECURITY_TOKEN";
/// RocketMQ's tools file under the RocketMQ home (`MixAll.ACL_CONF_TOOLS_FILE`).
pub const TOOLS_FILE: &str = "conf/tools.yml";
/// How the tools ([`Credentials::for_tools`]) find their keys, for their
/// usage texts.
pub const TOOLS_HELP: &str = "\
ACL: requests are signed when ROCKETMQ_ACCESS_KEY and ROCKETMQ_SECRET_KEY
(and optionally ROCKETMQ_SECURITY_TOKEN) are set, else with the accessKey
and secretKey lines of $ROCKETMQ_HOME/conf/tools.yml; without either they
go unsigned.
";

/// An access key and its secret (and optionally a security token). The
/// `Debug` form shows the access key only: secrets stay out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account's name, sent as the `AccessKey` extField.
    pub access_key: String,
    /// The HMAC key; never sent.
    pub secret_key: String,
    /// Sent as `SecurityToken` and signed with the rest when set.
    pub security_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// An access key and secret key without a security token.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// The same keys with a security token.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// These keys prepared for signing many requests: the secret is keyed
    /// into HMAC-SHA1 once here instead of per request. A client instance
    /// keeps one for its whole life.
    pub fn signer(&self) -> Signer {
        Signer::new(
            &self.access_key,
            &self.secret_key,
            self.security_token.as_deref(),
        )
    }

    /// Adds `AccessKey`, `SecurityToken` and `Signature` to `request`; call
    /// it once every extField and the body are final. For many requests,
    /// keep a [`Credentials::signer`].
    pub fn sign(&self, request: &mut RemotingCommand) {
        mq_protocol::acl::sign_request(
            request,
            &self.access_key,
            &self.secret_key,
            self.security_token.as_deref(),
        );
    }

    /// The keys from both values, none when both are blank; one without
    /// the other is an error naming where they came from.
    fn pair(access_key: &str, secret_key: &str, from: &str) -> Result<Option<Credentials>> {
        match (access_key.trim(), secret_key.trim()) {
            ("", "") => Ok(None),
            ("", _) | (_, "") => Err(ClientError::InvalidArgument(format!(
                "{from} has only one of the access key and the secret key"
            ))),
            (access, secret) => Ok(Some(Credentials::new(access, secret))),
        }
    }

    /// The keys in [`ACCESS_KEY_ENV`] and [`SECRET_KEY_ENV`] (and
    /// [`SECURITY_TOKEN_ENV`]); none when neither is set.
    pub fn from_env() -> Result<Option<Credentials>> {
        let var = |name| std::env::var(name).unwrap_or_default();
        let credentials = Credentials::pair(
            &var(ACCESS_KEY_ENV),
            &var(SECRET_KEY_ENV),
            &format!("the environment ({ACCESS_KEY_ENV}, {SECRET_KEY_ENV})"),
        )?;
        let token = var(SECURITY_TOKEN_ENV);
        Ok(credentials.map(|c| match token.trim() {
            "" => c,
            token => c.with_security_token(token),
        }))
    }

    /// The `accessKey` and `secretKey` of a RocketMQ `tools.yml` text (two
    /// top-level `key: value` lines; quotes and `#` comments allowed).
    pub fn from_tools_yml(text: &str, from: &str) -> Result<Option<Credentials>> {
        let (mut access, mut secret) = (String::new(), String::new());
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let slot = match key.trim() {
                "accessKey" => &mut access,
                "secretKey" => &mut secret,
                _ => continue,
            };
            *slot = yaml_scalar(value).to_owned();
        }
        Credentials::pair(&access, &secret, from)
    }

    /// [`Credentials::from_tools_yml`] of the file at `path`; none when
    /// there is no such file.
    pub fn from_tools_file(path: &Path) -> Result<Option<Credentials>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Credentials::from_tools_yml(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::InvalidArgument(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// What RocketMQ's tools sign with: the environment
    /// ([`Credentials::from_env`]) if it names a key, else
    /// `$ROCKETMQ_HOME/conf/tools.yml`, else none (requests go unsigned).
    pub fn for_tools() -> Result<Option<Credentials>> {
        if let Some(credentials) = Credentials::from_env()? {
            return Ok(Some(credentials));
        }
        match std::env::var_os("ROCKETMQ_HOME") {
            Some(home) if !home.is_empty() => {
                Credentials::from_tools_file(&PathBuf::from(home).join(TOOLS_FILE))
            }
            _ => Ok(None),
        }
    }
}

/// A plain or quoted YAML scalar without its trailing comment.
fn yaml_scalar(raw: &str) -> &str {
    let value = raw.trim();
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            if let Some(end) = rest.find(quote) {
                return &rest[..end];
            }
        }
    }
    // A `#` after a blank starts a comment in a plain scalar.
    let end = value
        .char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || value[..i].ends_with([' ', '\t'])))
        .map_or(value.len(), |(i, _)| i);
    value[..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::new("RocketMQ", "s3cr3t-key").with_security_token("tok3n");
        let shown = format!("{c:?}");
        assert!(shown.contains("RocketMQ"), "{shown}");
        assert!(
            !shown.contains("s3cr3t-key") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    #[test]
    fn tools_yml_as_rocketmq_ships_it() {
        let text = "# tools.yml\naccessKey: RocketMQ\nsecretKey: 12345678\n";
        assert_eq!(
            Credentials::from_tools_yml(text, "t").unwrap(),
            Some(Credentials::new("RocketMQ", "12345678"))
        );
        let quoted = "accessKey: \"rocket mq\"  # the operator\nsecretKey: '1#2'\n";
        assert_eq!(
            Credentials::from_tools_yml(quoted, "t").unwrap(),
            Some(Credentials::new("rocket mq", "1#2"))
        );
        assert_eq!(
            Credentials::from_tools_yml("accessKey: a#b # c\nsecretKey: x\n", "t").unwrap(),
            Some(Credentials::new("a#b", "x"))
        );
        assert_eq!(
            Credentials::from_tools_yml("other: 1\n", "t").unwrap(),
            None
        );
        let half = Credentials::from_tools_yml("accessKey: RocketMQ\n", "tools.yml").unwrap_err();
        assert!(half.to_string().contains("tools.yml"), "{half}");
    }

    #[test]
    fn a_missing_tools_file_means_no_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Credentials::from_tools_file(&dir.path().join("tools.yml")).unwrap(),
            None
        );
        std::fs::write(dir.path().join("tools.yml"), "accessKey: a\nsecretKey: b\n").unwrap();
        assert_eq!(
            Credentials::from_tools_file(&dir.path().join("tools.yml")).unwrap(),
            Some(Credentials::new("a", "b"))
        );
    }

    #[test]
    fn signed_requests_verify_with_the_secret_only() {
        let mut request = RemotingCommand::request(10).with_field("topic", "T");
        request.body = bytes::Bytes::from_static(b"body");
        Credentials::new("ak", "sk").sign(&mut request);
        assert_eq!(request.field(mq_protocol::acl::ACCESS_KEY), Some("ak"));
        assert!(mq_protocol::acl::verify_request(&request, "sk"));
        assert!(!mq_protocol::acl::verify_request(&request, "other"));

        // The prepared signer signs exactly as the keys do.
        let credentials = Credentials::new("ak", "sk").with_security_token("tok");
        let mut once = RemotingCommand::request(10).with_field("topic", "T");
        let mut prepared = once.clone();
        credentials.sign(&mut once);
        credentials.signer().sign(&mut prepared);
        assert_eq!(once, prepared);
        assert!(mq_protocol::acl::verify_request(&prepared, "sk"));
    }
}
