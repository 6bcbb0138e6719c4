//! RocketMQ 4.x plain ACL for the broker and the name server.
//!
//! Layout:
//! - [`file`]: `plain_acl.yml` (accounts, white lists, permissions), its
//!   checks with errors naming the line, and where the file is found.
//! - [`perm`]: DENY / PUB / SUB / PUB|SUB and RocketMQ's permission check.
//! - [`address`]: white list patterns (`*`, `192.168.0.*`, `192.168.1.1-5`, ...).
//! - [`resource`]: the table from request code to the topic / group
//!   permission or admin flag it needs, for the broker and the name server.
//! - [`validator`]: [`Validator`], the per-request check and the reload.
//!
//! Signing and signature checks are in [`mq_protocol::acl`], shared with
//! the client.

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
