//! RocketMQ 4.x plain ACL for the broker and the name server.
//!
//! Layout:
//! - [`file`](mod@file): `plain_acl.yml` (accounts, white lists, permissions), its
//!   checks with errors naming the line, and where the file is found.
//! - [`perm`]: DENY / PUB / SUB / PUB|SUB and RocketMQ's permission check.
//! - [`address`]: white list patterns (`*`, `192.168.0.*`, `192.168.1.1-5`, ...).
//! - [`resource`]: the table from request code to the topic / group
//!   permission or admin flag it needs, for the broker and the name server.
//! - [`validator`]: [`Validator`], the per-request check and the reload.
//!
//! Signing and signature checks are in [`mq_protocol::acl`], shared with
//! the client.
//!
//! Operating it:
//! - Broker (`broker.conf`): `aclEnable=true`; `aclFilePath` (absolute, or
//!   under `rocketmqHome`; default `conf/plain_acl.yml` there, RocketMQ's
//!   location); `accessKey`/`secretKey`, the account the broker signs its
//!   registrations and a slave's requests to its master with.
//! - Name server (`namesrv.properties`): `aclEnable=true`, `aclFilePath`
//!   likewise. Brokers register with an admin account; route, cluster and KV
//!   reads need no signature.
//! - As in RocketMQ 4.x, a request from an address on
//!   `globalWhiteRemoteAddresses`, or on the named account's
//!   `whiteRemoteAddress`, passes without signature or permission checks:
//!   keep those lists to trusted hosts. An admin account with no
//!   `topicPerms`/`groupPerms` owns every topic and group.
//! - The file is looked at every half second; an edit takes effect at once,
//!   and a malformed edit is logged with its line while the last good
//!   accounts stay in force. At start-up a missing or malformed file is fatal.

pub mod address;
pub mod file;
pub mod perm;
pub mod resource;
pub mod validator;

pub use address::AddressPattern;
pub use file::{resolve_path, Account, AclConfig, AclError, DEFAULT_FILE};
pub use perm::Perm;
pub use resource::{Resource, Rules};
pub use validator::{Refusal, Validator};
