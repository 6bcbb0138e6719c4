//! RocketMQ's plain-ACL request signature, shared by the signing side (the
//! client, the broker's registrations) and the checking side (`mq-acl`).
//!
//! A signed request carries [`ACCESS_KEY`], [`SIGNATURE`] and optionally
//! [`SECURITY_TOKEN`] among its extFields. The signature is HMAC-SHA1 keyed
//! with the account's secret key, base64-encoded, over the values of the
//! extFields sorted by key (all but [`SIGNATURE`] itself and
//! [`UNIQUE_KEY_QUERY_FLAG`], which `PlainAccessValidator` leaves out)
//! concatenated as UTF-8, then the body — byte for byte what RocketMQ 4.9's
//! `AclClientRPCHook` and `AclUtils.combineRequestContent` produce, so Java
//! clients and brokers interoperate.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::RemotingCommand;

/// extField naming the account a request is signed by.
pub const ACCESS_KEY: &str = "AccessKey";
/// Name of the account's secret in RocketMQ's configuration (`secretKey`);
/// never sent on the wire.
pub const SECRET_KEY: &str = "SecretKey";
/// extField holding the base64 HMAC-SHA1 signature.
pub const SIGNATURE: &str = "Signature";
/// Optional extField for a temporary credential's token; signed like any other field.
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// `MixAll.UNIQUE_MSG_QUERY_FLAG`: the query-by-unique-key flag the server
/// adds on its side, so `PlainAccessValidator` leaves it out of the content.
pub const UNIQUE_KEY_QUERY_FLAG: &str = "_UNIQUE_KEY_QUERY";

type HmacSha1 = Hmac<Sha1>;

/// Whether an extField takes part in the signed content.
fn is_signed_field(key: &str) -> bool {
    key != SIGNATURE && key != UNIQUE_KEY_QUERY_FLAG
}

/// The bytes RocketMQ signs: the values of the sorted extFields except
/// [`SIGNATURE`] and [`UNIQUE_KEY_QUERY_FLAG`], concatenated, then the body.
pub fn signature_content(ext_fields: &BTreeMap<String, String>, body: &[u8]) -> Vec<u8> {
    let len = ext_fields
        .iter()
        .filter(|(k, _)| is_signed_field(k))
        .map(|(_, v)| v.len())
        .sum::<usize>()
        + body.len();
    let mut out = Vec::with_capacity(len);
    for (_, value) in ext_fields.iter().filter(|(k, _)| is_signed_field(k)) {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn mac(secret_key: &str) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha1::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length")
}

fn encode(mac: HmacSha1) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// HMAC-SHA1 of `content` keyed with `secret_key`, base64 (standard alphabet,
/// padded), as `AclSigner.calSignature`.
pub fn sign(secret_key: &str, content: &[u8]) -> String {
    let mut mac = mac(secret_key);
    mac.update(content);
    encode(mac)
}

/// The signature of a request's extFields and body, fed to the HMAC field by
/// field so the send path builds no content buffer.
pub fn sign_fields(secret_key: &str, ext_fields: &BTreeMap<String, String>, body: &[u8]) -> String {
    let mut mac = mac(secret_key);
    for (_, value) in ext_fields.iter().filter(|(k, _)| is_signed_field(k)) {
        mac.update(value.as_bytes());
    }
    mac.update(body);
    encode(mac)
}

/// Signs a request as `AclClientRPCHook.doBeforeRequest`: adds [`ACCESS_KEY`]
/// (and [`SECURITY_TOKEN`] when given) first, so both are covered by the
/// signature, then [`SIGNATURE`]. Call it last, once every header field and
/// the body are final.
pub fn sign_request(
    cmd: &mut RemotingCommand,
    access_key: &str,
    secret_key: &str,
    security_token: Option<&str>,
) {
    cmd.ext_fields
        .insert(ACCESS_KEY.to_string(), access_key.to_string());
    if let Some(token) = security_token {
        cmd.ext_fields
            .insert(SECURITY_TOKEN.to_string(), token.to_string());
    }
    let signature = sign_fields(secret_key, &cmd.ext_fields, &cmd.body);
    cmd.ext_fields.insert(SIGNATURE.to_string(), signature);
}

/// Whether `signature` is the signature of `content` under `secret_key`,
/// compared in constant time so a caller cannot learn a prefix by timing.
pub fn verify(secret_key: &str, content: &[u8], signature: &str) -> bool {
    constant_time_eq(sign(secret_key, content).as_bytes(), signature.as_bytes())
}

/// Whether a request's [`SIGNATURE`] matches its extFields and body under
/// `secret_key` (constant time; no content buffer). A request without a
/// signature does not verify.
pub fn verify_request(cmd: &RemotingCommand, secret_key: &str) -> bool {
    match cmd.ext_fields.get(SIGNATURE) {
        Some(signature) => constant_time_eq(
            sign_fields(secret_key, &cmd.ext_fields, &cmd.body).as_bytes(),
            signature.as_bytes(),
        ),
        None => false,
    }
}

/// Equality whose time depends only on the lengths (a base64 SHA-1 is always
/// 28 bytes, so the length says nothing).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'abc' | openssl dgst -sha1 -hmac 12345678 -binary | base64`
    const ABC_UNDER_12345678: &str = "BOigG5+Fiv0354g5bQuwOUOPMp0=";

    #[test]
    fn sign_matches_openssl() {
        assert_eq!(sign("12345678", b"abc"), ABC_UNDER_12345678);
    }

    #[test]
    fn content_is_sorted_values_without_signature_then_body() {
        let mut fields = BTreeMap::new();
        fields.insert("topic".to_string(), "c".to_string());
        fields.insert("AccessKey".to_string(), "a".to_string());
        fields.insert("Signature".to_string(), "zzz".to_string());
        fields.insert(UNIQUE_KEY_QUERY_FLAG.to_string(), "true".to_string());
        fields.insert("b".to_string(), "b".to_string());
        assert_eq!(signature_content(&fields, b"body"), b"abcbody");
    }

    #[test]
    fn signed_request_carries_key_and_verifies() {
        // extFields end up {AccessKey: "ab", b: "c"}, content "abc".
        let mut cmd = RemotingCommand::request(10).with_field("b", "c");
        sign_request(&mut cmd, "ab", "12345678", None);
        assert_eq!(cmd.field(ACCESS_KEY), Some("ab"));
        assert_eq!(cmd.field(SIGNATURE), Some(ABC_UNDER_12345678));
        assert!(verify_request(&cmd, "12345678"));
        assert!(!verify_request(&cmd, "12345679"));
        let content = signature_content(&cmd.ext_fields, &cmd.body);
        assert!(verify("12345678", &content, ABC_UNDER_12345678));

        let mut tampered = cmd.clone();
        tampered.body = bytes::Bytes::from_static(b"x");
        assert!(!verify_request(&tampered, "12345678"));
    }

    #[test]
    fn security_token_is_signed() {
        let mut cmd = RemotingCommand::request(10);
        sign_request(&mut cmd, "ak", "sk", Some("tok"));
        assert_eq!(cmd.field(SECURITY_TOKEN), Some("tok"));
        let content = signature_content(&cmd.ext_fields, &cmd.body);
        assert_eq!(content, b"aktok");
        assert_eq!(cmd.field(SIGNATURE), Some(sign("sk", b"aktok").as_str()));
    }
}
