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

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::header::{Fields, Text};
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

/// The values that are signed, in their keys' order (RocketMQ signs a
/// sorted map of the fields).
fn signed_values(ext_fields: &Fields) -> Vec<&str> {
    ext_fields
        .sorted()
        .into_iter()
        .filter(|(k, _)| is_signed_field(k))
        .map(|(_, v)| v)
        .collect()
}

/// The bytes RocketMQ signs: the values of the sorted extFields except
/// [`SIGNATURE`] and [`UNIQUE_KEY_QUERY_FLAG`], concatenated, then the body.
pub fn signature_content(ext_fields: &Fields, body: &[u8]) -> Vec<u8> {
    let signed = signed_values(ext_fields);
    let len = signed.iter().map(|v| v.len()).sum::<usize>() + body.len();
    let mut out = Vec::with_capacity(len);
    for value in signed {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// Length of a base64 HMAC-SHA1 (20 bytes, padded).
const SIGNATURE_LEN: usize = 28;

/// An account's secret key, keyed into HMAC-SHA1 once: deriving the key
/// (padding it and hashing the inner and outer key blocks) is done here, and
/// each signature starts from a copy of this state. Build it when the
/// account is loaded, not per request. `Debug` shows no key material.
#[derive(Clone)]
pub struct SigningKey {
    mac: HmacSha1,
}

impl SigningKey {
    /// The keyed state for `secret_key`.
    pub fn new(secret_key: &str) -> SigningKey {
        SigningKey {
            // HMAC accepts keys of any length, so this cannot fail.
            mac: HmacSha1::new_from_slice(secret_key.as_bytes())
                .expect("HMAC takes any key length"),
        }
    }

    /// The raw MAC of the request content, fed field by field (no content
    /// buffer).
    fn mac_fields(&self, ext_fields: &Fields, body: &[u8]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        for value in signed_values(ext_fields) {
            mac.update(value.as_bytes());
        }
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The base64 signature of `content`, as `AclSigner.calSignature`.
    pub fn sign(&self, content: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(content);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The base64 signature of a request's extFields and body.
    pub fn sign_fields(&self, ext_fields: &Fields, body: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.mac_fields(ext_fields, body))
    }

    /// Whether a request's [`SIGNATURE`] matches its extFields and body
    /// under this key: the expected signature is encoded on the stack and
    /// compared in constant time (the fields' sort is the one allocation).
    /// A request without a signature does not verify.
    pub fn verify_request(&self, cmd: &RemotingCommand) -> bool {
        let Some(signature) = cmd.ext_fields.get(SIGNATURE) else {
            return false;
        };
        let mut expected = [0u8; SIGNATURE_LEN];
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(self.mac_fields(&cmd.ext_fields, &cmd.body), &mut expected)
            .expect("20 bytes encode to 28");
        constant_time_eq(&expected[..written], signature.as_bytes())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// What a client signs its requests with: the access key and optional
/// security token it sends, and the keyed secret ([`SigningKey`]), prepared
/// once per client.
#[derive(Clone)]
pub struct Signer {
    access_key: String,
    security_token: Option<String>,
    key: SigningKey,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, security_token: Option<&str>) -> Signer {
        Signer {
            access_key: access_key.to_owned(),
            security_token: security_token.map(str::to_owned),
            key: SigningKey::new(secret_key),
        }
    }

    /// The access key requests are signed as.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Signs `cmd` as [`sign_request`] does, with the key derived once.
    pub fn sign(&self, cmd: &mut RemotingCommand) {
        cmd.ext_fields
            .insert(Text::from_static(ACCESS_KEY), self.access_key.clone());
        if let Some(token) = &self.security_token {
            cmd.ext_fields
                .insert(Text::from_static(SECURITY_TOKEN), token.clone());
        }
        let signature = self.key.sign_fields(&cmd.ext_fields, &cmd.body);
        cmd.ext_fields
            .insert(Text::from_static(SIGNATURE), signature);
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA1 of `content` keyed with `secret_key`, base64 (standard alphabet,
/// padded), as `AclSigner.calSignature`.
pub fn sign(secret_key: &str, content: &[u8]) -> String {
    SigningKey::new(secret_key).sign(content)
}

/// The signature of a request's extFields and body, fed to the HMAC field by
/// field so the send path builds no content buffer. For many requests under
/// one key, keep a [`SigningKey`].
pub fn sign_fields(secret_key: &str, ext_fields: &Fields, body: &[u8]) -> String {
    SigningKey::new(secret_key).sign_fields(ext_fields, body)
}

/// Signs a request as `AclClientRPCHook.doBeforeRequest`: adds [`ACCESS_KEY`]
/// (and [`SECURITY_TOKEN`] when given) first, so both are covered by the
/// signature, then [`SIGNATURE`]. Call it last, once every header field and
/// the body are final. A client signing many requests keeps a [`Signer`].
pub fn sign_request(
    cmd: &mut RemotingCommand,
    access_key: &str,
    secret_key: &str,
    security_token: Option<&str>,
) {
    Signer::new(access_key, secret_key, security_token).sign(cmd);
}

/// Whether `signature` is the signature of `content` under `secret_key`,
/// compared in constant time so a caller cannot learn a prefix by timing.
pub fn verify(secret_key: &str, content: &[u8], signature: &str) -> bool {
    constant_time_eq(sign(secret_key, content).as_bytes(), signature.as_bytes())
}

/// Whether a request's [`SIGNATURE`] matches its extFields and body under
/// `secret_key` (constant time; no content buffer). A request without a
/// signature does not verify. A server checking many requests keeps a
/// [`SigningKey`] per account.
pub fn verify_request(cmd: &RemotingCommand, secret_key: &str) -> bool {
    SigningKey::new(secret_key).verify_request(cmd)
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
        let mut fields = Fields::new();
        fields.insert("topic", "c");
        fields.insert("AccessKey", "a");
        fields.insert("Signature", "zzz");
        fields.insert(UNIQUE_KEY_QUERY_FLAG, "true");
        fields.insert("b", "b");
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

    #[test]
    fn a_keyed_state_signs_as_a_fresh_key_every_time() {
        let key = SigningKey::new("12345678");
        for _ in 0..3 {
            assert_eq!(key.sign(b"abc"), ABC_UNDER_12345678);
        }
        let signer = Signer::new("ab", "12345678", None);
        let mut first = RemotingCommand::request(10).with_field("b", "c");
        let mut second = first.clone();
        signer.sign(&mut first);
        signer.sign(&mut second);
        assert_eq!(first.field(SIGNATURE), Some(ABC_UNDER_12345678));
        assert_eq!(first, second);
        assert!(key.verify_request(&first));
        assert!(!SigningKey::new("12345679").verify_request(&first));
    }

    #[test]
    fn only_the_exact_signature_verifies() {
        let key = SigningKey::new("12345678");
        let mut cmd = RemotingCommand::request(10).with_field("b", "c");
        sign_request(&mut cmd, "ab", "12345678", None);
        let good = cmd.field(SIGNATURE).unwrap().to_owned();
        for bad in [
            String::new(),
            good[..27].to_owned(),
            format!("{good}="),
            good.trim_end_matches('=').to_owned(),
            good.to_lowercase(),
        ] {
            let mut forged = cmd.clone();
            forged.ext_fields.insert(SIGNATURE, bad.clone());
            assert!(!key.verify_request(&forged), "{bad:?}");
        }
        cmd.ext_fields.remove(SIGNATURE);
        assert!(!key.verify_request(&cmd));
    }

    #[test]
    fn debug_shows_no_key() {
        let signer = Signer::new("ak", "s3cr3t-key", Some("tok3n"));
        let shown = format!("{signer:?} {:?}", SigningKey::new("s3cr3t-key"));
        assert!(shown.contains("ak"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
