//! The RocketMQ 4.x remoting protocol as pure functions over bytes.
//!
//! Layout:
//! - [`frame`]: [`RemotingCommand`], one request or response, and its frame
//!   codec (JSON and ROCKETMQ binary headers). A connection feeds bytes to
//!   [`RemotingCommand::decode`] and writes [`RemotingCommand::encode`].
//! - [`header`]: typed request/response headers over a frame's extFields
//!   ([`header::Fields`], string pairs that share the received frame).
//! - [`body`]: JSON bodies of heartbeats, queue locks and consumer lists.
//! - [`admin_body`]: bodies of the admin requests (stats, offset resets,
//!   consumer status), several in [`fastjson`]'s object-keyed dialect.
//! - [`code`]: request codes, response codes and language codes.
//! - [`filter`]: subscription expression types and the SQL92 selector
//!   language (parser and evaluator) that property filters use.
//! - [`message`]: the stored/pulled message format ([`MessageExt`],
//!   [`MessageRecord`]), properties, sys flags, message ids and batch bodies.
//! - [`topic`]: system topic names and name validation.
//! - [`name`]: [`name::TopicName`] and [`name::GroupName`], names that
//!   passed RocketMQ's rules (the only ones that may become a path).
//! - [`properties`]: Java `.properties` text, the configuration file format.
//!
//! Nothing here does I/O or allocates more than the bytes it was given can
//! justify: the broker, the name server, the client and the store all share
//! this crate.

pub mod acl;
pub mod admin_body;
pub mod body;
pub mod client_body;
pub mod code;
mod error;
pub mod fastjson;
mod fields;
pub mod filter;
pub mod frame;
pub mod header;
pub mod message;
pub mod name;
pub use props as properties;
mod reader;
pub mod route;
pub mod topic;

pub use code::{request_code, LanguageCode, ResponseCode};
pub use error::ProtocolError;
pub use frame::{RemotingCommand, SerializeType, DEFAULT_MAX_FRAME_LEN};
pub use message::{MessageExt, MessageRecord, Properties};
