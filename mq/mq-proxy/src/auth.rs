//! ACL for 5.x clients: the accounts of the brokers' `plain_acl.yml`
//! applied to gRPC requests, so both protocols share one file.
//!
//! A 5.x SDK with an access key and secret signs every call's metadata
//! (apache/rocketmq-clients' `Signature.sign`, the Rust SDK's
//! `sign_without_timeout`):
//!
//! ```text
//! x-mq-date-time: <the client's clock, any text>
//! authorization:  MQv2-HMAC-SHA1 Credential=<accessKey>, SignedHeaders=x-mq-date-time, Signature=<hex>
//! ```
//!
//! where `<hex>` is HMAC-SHA1 keyed with the secret key over the bytes of
//! the `x-mq-date-time` value (the Java SDK writes upper-case hex, the
//! Rust one lower-case; RocketMQ decodes either). As in RocketMQ, the
//! signature proves the caller knows the secret, nothing more: it covers
//! neither the request nor a server nonce, and the date-time is not
//! checked against the clock (the Java SDK writes local time without a
//! zone), so a captured header can be replayed. Use TLS in front of the
//! proxy where that matters.
//!
//! The check runs as [`mq_acl::Validator`] does for 4.x requests: an
//! address on `globalWhiteRemoteAddresses` passes; otherwise the request
//! must be signed by a known account (else `UNAUTHORIZED`); the account's
//! `whiteRemoteAddress` passes; otherwise the signature must verify (else
//! `UNAUTHORIZED`) and the account must own what the RPC needs ([`Guarded`],
//! RocketMQ's `DefaultAuthorizationContextBuilder` table: PUB on the topics
//! a producer sends to, SUB on a consumer's group and topics, PUB or SUB
//! for a route; else `FORBIDDEN`). The file is re-read when it changes.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
#[cfg(test)]
use mq_acl::AclConfig;
use mq_acl::{Account, AclError, Perm, Resource, Rules, Validator};
use sha1::Sha1;
use tonic::metadata::MetadataMap;

use crate::pb::{self, Code};
use crate::status::ProxyError;

/// The metadata key of the signature.
pub(crate) const AUTHORIZATION: &str = "authorization";
/// The metadata key of the signed value.
pub(crate) const DATE_TIME: &str = "x-mq-date-time";
/// The only signing algorithm the 5.x SDKs use.
pub(crate) const ALGORITHM: &str = "MQv2-HMAC-SHA1";

/// How often the accounts file's modification time is looked at (as the
/// broker's).
const RELOAD_PERIOD: Duration = Duration::from_millis(500);

/// One thing an RPC touches and the permission it needs there.
pub(crate) type Need<'a> = (Resource<'a>, Perm);

/// The `authorization` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    pub access_key: &'a str,
    /// The raw HMAC-SHA1 the header carries (hex decoded).
    pub signature: [u8; 20],
}

impl<'a> Authorization<'a> {
    /// Parses `MQv2-HMAC-SHA1 Credential=AK[/...], SignedHeaders=x-mq-date-time, Signature=HEX`.
    pub fn parse(value: &'a str) -> Result<Authorization<'a>, String> {
        let (algorithm, rest) = value
            .trim()
            .split_once(' ')
            .ok_or("the authorization header has no algorithm and credential")?;
        if algorithm != ALGORITHM {
            return Err(format!(
                "the authorization header's algorithm is {algorithm:?}, not {ALGORITHM}"
            ));
        }
        let mut access_key = None;
        let mut signature = None;
        let mut signed_headers = None;
        for item in rest.split(',') {
            let (key, value) = item.trim().split_once('=').ok_or_else(|| {
                format!(
                    "{:?} in the authorization header is not key=value",
                    item.trim()
                )
            })?;
            match key {
                // RocketMQ: `Credential=<accessKey>/<more>`; the first part counts.
                "Credential" => access_key = value.split('/').next(),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let access_key = access_key
            .filter(|k| !k.is_empty())
            .ok_or("the authorization header names no Credential (access key)")?;
        if let Some(headers) = signed_headers {
            if !headers
                .split(';')
                .any(|h| h.eq_ignore_ascii_case(DATE_TIME))
            {
                return Err(format!(
                    "the authorization header signs {headers:?}; only {DATE_TIME} is understood"
                ));
            }
        }
        let signature = signature
            .and_then(decode_hex)
            .ok_or("the authorization header's Signature is not 40 hex digits")?;
        Ok(Authorization {
            access_key,
            signature,
        })
    }
}

/// 40 hex digits, either case, to 20 bytes.
fn decode_hex(text: &str) -> Option<[u8; 20]> {
    let bytes = text.as_bytes();
    if bytes.len() != 40 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 20];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Whether `signature` is HMAC-SHA1 of `content` under `secret_key`,
/// compared in constant time.
fn verifies(secret_key: &str, content: &[u8], signature: &[u8; 20]) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()) else {
        return false;
    };
    mac.update(content);
    mac.verify_slice(signature).is_ok()
}

/// Who sent a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// From a white-listed address: no permission checks, as 4.x.
    Trusted,
    /// Signed by this account.
    Account(String),
}

/// The 5.x side's ACL: the accounts file, watched for changes.
pub(crate) struct Acl {
    validator: Arc<Validator>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for Acl {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

fn unauthorized(message: impl Into<String>) -> ProxyError {
    ProxyError::new(Code::Unauthorized, message)
}

impl Acl {
    /// Loads `path` and watches it on the current runtime; an unusable
    /// file is an error (the proxy must not start).
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let validator = Arc::new(Validator::load(Rules::Broker, path)?);
        let watcher = validator.watch(RELOAD_PERIOD);
        Ok(Acl { validator, watcher })
    }

    /// Who signed a request from `remote` with `metadata`; `UNAUTHORIZED`
    /// when it is not signed, names no account, or does not verify.
    pub fn authenticate(
        &self,
        remote: Option<IpAddr>,
        metadata: &MetadataMap,
    ) -> Result<Principal, ProxyError> {
        let config = self.validator.config();
        let white = |pattern: &mq_acl::AddressPattern| remote.is_some_and(|ip| pattern.matches(ip));
        if config.global_white_remote_addresses.iter().any(white) {
            return Ok(Principal::Trusted);
        }
        let header = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok());
        let Some(value) = header(AUTHORIZATION).filter(|v| !v.is_empty()) else {
            return Err(unauthorized(
                "ACL is on and the request is not signed: set the client's access key and secret key",
            ));
        };
        let authorization = Authorization::parse(value).map_err(unauthorized)?;
        let access_key = authorization.access_key;
        let Some(account) = config.accounts.get(access_key) else {
            return Err(unauthorized(format!(
                "no account for access key {access_key}"
            )));
        };
        if white(&account.white_remote_address) {
            return Ok(Principal::Trusted);
        }
        let Some(date_time) = header(DATE_TIME).filter(|v| !v.is_empty()) else {
            return Err(unauthorized(format!(
                "the request of access key {access_key} has no {DATE_TIME} header to check the signature with"
            )));
        };
        if !verifies(
            &account.secret_key,
            date_time.as_bytes(),
            &authorization.signature,
        ) {
            return Err(unauthorized(format!(
                "the signature of access key {access_key} does not verify (wrong secret key?)"
            )));
        }
        Ok(Principal::Account(access_key.to_owned()))
    }

    /// Whether `principal` owns every need; `FORBIDDEN` names the first
    /// one it does not.
    pub fn authorize(&self, principal: &Principal, needs: &[Need<'_>]) -> Result<(), ProxyError> {
        let Principal::Account(access_key) = principal else {
            return Ok(());
        };
        let config = self.validator.config();
        let Some(account) = config.accounts.get(access_key) else {
            // Removed from the file since the stream was opened.
            return Err(unauthorized(format!(
                "no account for access key {access_key}"
            )));
        };
        for (resource, needed) in needs {
            let owned = owned(account, resource);
            if !owned.allows(*needed) {
                return Err(ProxyError::new(
                    Code::Forbidden,
                    format!("access key {access_key} has no {needed} permission on {resource} (it has {owned})"),
                ));
            }
        }
        Ok(())
    }

    /// Both checks of one call.
    pub fn check(
        &self,
        remote: Option<IpAddr>,
        metadata: &MetadataMap,
        needs: &[Need<'_>],
    ) -> Result<(), ProxyError> {
        let principal = self.authenticate(remote, metadata)?;
        self.authorize(&principal, needs)
    }

    #[cfg(test)]
    fn config(&self) -> Arc<AclConfig> {
        self.validator.config()
    }
}

/// What `account` may do on `resource`, as the 4.x validator reads it: the
/// entry, else the default; an admin without entries owns everything.
fn owned(account: &Account, resource: &Resource<'_>) -> Perm {
    if account.admin && account.topic_perms.is_empty() && account.group_perms.is_empty() {
        return Perm::PUB_SUB;
    }
    match resource {
        Resource::Topic(t) => account
            .topic_perms
            .get(*t)
            .copied()
            .unwrap_or(account.default_topic_perm),
        Resource::Group(g) => account
            .group_perms
            .get(*g)
            .copied()
            .unwrap_or(account.default_group_perm),
    }
}

/// A name the request gives, if any (a missing one is the handler's
/// BAD_REQUEST, after the signature was checked).
fn name(resource: Option<&pb::Resource>) -> Option<&str> {
    resource.map(|r| r.name.as_str()).filter(|n| !n.is_empty())
}

fn topic(resource: Option<&pb::Resource>) -> Option<Resource<'_>> {
    name(resource).map(Resource::topic)
}

fn group(resource: Option<&pb::Resource>) -> Option<Resource<'_>> {
    name(resource).map(Resource::Group)
}

fn queue_topic(mq: Option<&pb::MessageQueue>) -> Option<Resource<'_>> {
    topic(mq.and_then(|q| q.topic.as_ref()))
}

/// A send needs PUB on its topic; a send to a group's retry topic SUB on
/// the group (as 4.x).
fn publish(resource: Option<Resource<'_>>) -> Option<Need<'_>> {
    resource.map(|r| match r {
        Resource::Group(_) => (r, Perm::SUB),
        Resource::Topic(_) => (r, Perm::PUB),
    })
}

/// SUB on each resource named.
fn subscribe<'a>(resources: impl IntoIterator<Item = Option<Resource<'a>>>) -> Vec<Need<'a>> {
    resources
        .into_iter()
        .flatten()
        .map(|r| (r, Perm::SUB))
        .collect()
}

/// What an RPC's request needs under ACL.
pub(crate) trait Guarded {
    fn needs(&self) -> Vec<Need<'_>>;
}

impl Guarded for pb::QueryRouteRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        topic(self.topic.as_ref())
            .map(|t| (t, Perm::ANY))
            .into_iter()
            .collect()
    }
}

impl Guarded for pb::HeartbeatRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        use pb::ClientType as T;
        match self.client_type() {
            T::PushConsumer | T::SimpleConsumer | T::PullConsumer => {
                subscribe([group(self.group.as_ref())])
            }
            _ => vec![],
        }
    }
}

impl Guarded for pb::SendMessageRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        self.messages
            .iter()
            .filter_map(|m| publish(topic(m.topic.as_ref())))
            .collect()
    }
}

impl Guarded for pb::EndTransactionRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        publish(topic(self.topic.as_ref())).into_iter().collect()
    }
}

impl Guarded for pb::RecallMessageRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        publish(topic(self.topic.as_ref())).into_iter().collect()
    }
}

impl Guarded for pb::QueryAssignmentRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([group(self.group.as_ref()), topic(self.topic.as_ref())])
    }
}

impl Guarded for pb::ReceiveMessageRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([
            group(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        ])
    }
}

impl Guarded for pb::AckMessageRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([group(self.group.as_ref()), topic(self.topic.as_ref())])
    }
}

impl Guarded for pb::ForwardMessageToDeadLetterQueueRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([group(self.group.as_ref()), topic(self.topic.as_ref())])
    }
}

impl Guarded for pb::ChangeInvisibleDurationRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([group(self.group.as_ref()), topic(self.topic.as_ref())])
    }
}

impl Guarded for pb::NotifyClientTerminationRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([group(self.group.as_ref())])
    }
}

impl Guarded for pb::PullMessageRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([
            group(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        ])
    }
}

impl Guarded for pb::UpdateOffsetRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([
            group(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        ])
    }
}

impl Guarded for pb::GetOffsetRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([
            group(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        ])
    }
}

impl Guarded for pb::QueryOffsetRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        subscribe([queue_topic(self.message_queue.as_ref())])
    }
}

impl Guarded for pb::SyncLiteSubscriptionRequest {
    fn needs(&self) -> Vec<Need<'_>> {
        vec![]
    }
}

/// A client's settings: a producer's topics need PUB, a consumer's group
/// and topics SUB.
impl Guarded for pb::Settings {
    fn needs(&self) -> Vec<Need<'_>> {
        use pb::settings::PubSub;
        match &self.pub_sub {
            Some(PubSub::Publishing(p)) => p
                .topics
                .iter()
                .filter_map(|t| publish(topic(Some(t))))
                .collect(),
            Some(PubSub::Subscription(s)) => subscribe(
                std::iter::once(group(s.group.as_ref()))
                    .chain(s.subscriptions.iter().map(|e| topic(e.topic.as_ref()))),
            ),
            None => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    const FILE: &str = "\
globalWhiteRemoteAddresses:
  - 10.9.9.*
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    whiteRemoteAddress: 10.1.1.1
    topicPerms:
      - T=PUB
      - S=SUB
  - accessKey: consumer1
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    groupPerms:
      - g=SUB
  - accessKey: operator
    secretKey: operator-secret
    admin: true
";

    /// Inside a runtime: the file is watched.
    fn acl() -> (tempfile::TempDir, Acl) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        std::fs::write(&path, FILE).unwrap();
        let acl = Acl::load(&path).unwrap();
        (dir, acl)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn hmac(secret: &str, content: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(content.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Metadata as the Rust SDK signs it.
    fn signed(access_key: &str, secret: &str) -> MetadataMap {
        let date_time = "2026-12-03T08:00:00.123+00:00";
        let mut metadata = MetadataMap::new();
        metadata.insert(DATE_TIME, MetadataValue::try_from(date_time).unwrap());
        let value = format!(
            "{ALGORITHM} Credential={access_key}, SignedHeaders=x-mq-date-time, Signature={}",
            hex(&hmac(secret, date_time))
        );
        metadata.insert(AUTHORIZATION, MetadataValue::try_from(value).unwrap());
        metadata
    }

    fn local() -> Option<IpAddr> {
        Some("127.0.0.1".parse().unwrap())
    }

    #[test]
    fn the_authorization_header_parses_as_the_sdks_write_it() {
        let sig = "D18A9CBCDDBA9041D6693268FEF15A989E64430B";
        let value =
            format!("MQv2-HMAC-SHA1 Credential=abc, SignedHeaders=x-mq-date-time, Signature={sig}");
        let parsed = Authorization::parse(&value).unwrap();
        assert_eq!(parsed.access_key, "abc");
        assert_eq!(hex(&parsed.signature), sig.to_ascii_lowercase());
        let lower = value
            .to_ascii_lowercase()
            .replace("mqv2-hmac-sha1", ALGORITHM);
        assert!(
            Authorization::parse(&lower).is_err(),
            "keys are case-sensitive"
        );
        let with_region = format!("{ALGORITHM} Credential=abc/region/mq, Signature={sig}");
        assert_eq!(
            Authorization::parse(&with_region).unwrap().access_key,
            "abc"
        );
        for bad in [
            "",
            "MQv2-HMAC-SHA1",
            &format!("HMAC-SHA256 Credential=abc, Signature={sig}"),
            &format!("{ALGORITHM} Signature={sig}"),
            &format!("{ALGORITHM} Credential=abc, Signature=12"),
            &format!(
                "{ALGORITHM} Credential=abc, Signature={}",
                &sig.replace('D', "G")
            ),
            &format!("{ALGORITHM} Credential=abc, SignedHeaders=host, Signature={sig}"),
            &format!("{ALGORITHM} Credential=abc Signature={sig}"),
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_signature_verifies_in_either_hex_case_and_only_with_the_secret() {
        let (_dir, acl) = acl();
        let ok = signed("producer1", "producer-secret");
        assert_eq!(
            acl.authenticate(local(), &ok),
            Ok(Principal::Account("producer1".into()))
        );
        let mut upper = ok.clone();
        let value = upper
            .get(AUTHORIZATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let (head, sig) = value.rsplit_once('=').unwrap();
        upper.insert(
            AUTHORIZATION,
            MetadataValue::try_from(format!("{head}={}", sig.to_ascii_uppercase())).unwrap(),
        );
        assert!(acl.authenticate(local(), &upper).is_ok());

        let refused = |metadata: &MetadataMap| acl.authenticate(local(), metadata).unwrap_err();
        let wrong = refused(&signed("producer1", "wrong-secret"));
        assert_eq!(wrong.code, Code::Unauthorized);
        assert!(
            wrong.message.contains("does not verify"),
            "{}",
            wrong.message
        );
        let unknown = refused(&signed("nobody11", "whatever"));
        assert_eq!(unknown.code, Code::Unauthorized);
        assert!(unknown.message.contains("nobody11"), "{}", unknown.message);
        let unsigned = refused(&MetadataMap::new());
        assert_eq!(unsigned.code, Code::Unauthorized);
        assert!(
            unsigned.message.contains("not signed"),
            "{}",
            unsigned.message
        );
        // Another date-time than the one signed.
        let mut replaced = ok.clone();
        replaced.insert(
            DATE_TIME,
            MetadataValue::from_static("2030-01-01T00:00:00Z"),
        );
        assert_eq!(refused(&replaced).code, Code::Unauthorized);
        let mut no_date = ok;
        no_date.remove(DATE_TIME);
        assert!(refused(&no_date).message.contains(DATE_TIME));
    }

    #[tokio::test]
    async fn white_lists_pass_without_a_signature_or_permissions() {
        let (_dir, acl) = acl();
        let from = |ip: &str| Some(ip.parse().unwrap());
        assert_eq!(
            acl.authenticate(from("10.9.9.7"), &MetadataMap::new()),
            Ok(Principal::Trusted)
        );
        assert!(acl.authenticate(None, &MetadataMap::new()).is_err());
        // The account's own white list: named, but the signature is not checked.
        let wrong = signed("producer1", "wrong-secret");
        assert_eq!(
            acl.authenticate(from("10.1.1.1"), &wrong),
            Ok(Principal::Trusted)
        );
        assert!(acl
            .authorize(&Principal::Trusted, &[(Resource::Topic("X"), Perm::PUB)])
            .is_ok());
    }

    #[tokio::test]
    async fn permissions_follow_the_accounts_file() {
        let (_dir, acl) = acl();
        let check = |ak: &str, sk: &str, needs: &[Need<'_>]| {
            acl.check(local(), &signed(ak, sk), needs)
                .map_err(|e| e.code)
        };
        let send = |t: &'static str| pb::SendMessageRequest {
            messages: vec![pb::Message {
                topic: Some(pb::Resource {
                    name: t.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        };
        assert_eq!(
            check("producer1", "producer-secret", &send("T").needs()),
            Ok(())
        );
        assert_eq!(
            check("producer1", "producer-secret", &send("S").needs()),
            Err(Code::Forbidden)
        );
        let denied = acl
            .check(
                local(),
                &signed("producer1", "producer-secret"),
                &send("U").needs(),
            )
            .unwrap_err();
        assert!(
            denied.message.contains("PUB permission on topic U"),
            "{}",
            denied.message
        );
        // A route needs PUB or SUB.
        let route = |t: &'static str| pb::QueryRouteRequest {
            topic: Some(pb::Resource {
                name: t.into(),
                ..Default::default()
            }),
            endpoints: None,
        };
        assert_eq!(
            check("producer1", "producer-secret", &route("S").needs()),
            Ok(())
        );
        assert_eq!(
            check("producer1", "producer-secret", &route("U").needs()),
            Err(Code::Forbidden)
        );
        // A consumer: its group and topic.
        let receive = |g: &'static str, t: &'static str| pb::ReceiveMessageRequest {
            group: Some(pb::Resource {
                name: g.into(),
                ..Default::default()
            }),
            message_queue: Some(pb::MessageQueue {
                topic: Some(pb::Resource {
                    name: t.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            check("consumer1", "consumer-secret", &receive("g", "Any").needs()),
            Ok(())
        );
        assert_eq!(
            check("consumer1", "consumer-secret", &receive("h", "Any").needs()),
            Err(Code::Forbidden)
        );
        assert_eq!(
            check("consumer1", "consumer-secret", &send("Any").needs()),
            Err(Code::Forbidden)
        );
        // An admin without entries owns everything.
        assert_eq!(
            check("operator", "operator-secret", &send("Any").needs()),
            Ok(())
        );
        assert_eq!(
            check(
                "operator",
                "operator-secret",
                &receive("any", "Any").needs()
            ),
            Ok(())
        );
        assert!(acl.config().accounts.contains_key("operator"));
    }

    #[test]
    fn settings_need_their_topics_and_group() {
        use pb::settings::PubSub;
        let resource = |n: &str| pb::Resource {
            name: n.into(),
            ..Default::default()
        };
        let publishing = pb::Settings {
            pub_sub: Some(PubSub::Publishing(pb::Publishing {
                topics: vec![resource("A"), resource("%RETRY%g")],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            publishing.needs(),
            vec![
                (Resource::Topic("A"), Perm::PUB),
                (Resource::Group("g"), Perm::SUB)
            ]
        );
        let subscription = pb::Settings {
            pub_sub: Some(PubSub::Subscription(pb::Subscription {
                group: Some(resource("g")),
                subscriptions: vec![pb::SubscriptionEntry {
                    topic: Some(resource("B")),
                    expression: None,
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            subscription.needs(),
            vec![
                (Resource::Group("g"), Perm::SUB),
                (Resource::Topic("B"), Perm::SUB)
            ]
        );
        let producer_heartbeat = pb::HeartbeatRequest {
            group: None,
            client_type: pb::ClientType::Producer as i32,
        };
        assert!(producer_heartbeat.needs().is_empty());
        let consumer_heartbeat = pb::HeartbeatRequest {
            group: Some(resource("g")),
            client_type: pb::ClientType::SimpleConsumer as i32,
        };
        assert_eq!(
            consumer_heartbeat.needs(),
            vec![(Resource::Group("g"), Perm::SUB)]
        );
    }
}
