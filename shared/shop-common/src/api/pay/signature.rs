//! The gateway's notification signature, defined once for both ends (the
//! gateway signs with [`sign`], the pay service checks with [`verify`]).
//!
//! The signed text is the canonical string of the notification's fields in
//! a fixed order:
//!
//! ```text
//! payment_id=<uuid>&order_id=<uuid>&amount=<units>.<cents>&trade_no=<trade no>
//! ```
//!
//! UUIDs are lower-case and hyphenated; the amount always has exactly two
//! decimals (`12.30`, `0.05`), so `12.3`, `"12.30"` and `12.30` sign the
//! same text; `trade_no` is last and limited to `[A-Za-z0-9_-]`, so no field
//! can smuggle a `&` into another. The signature is the lower-case hex of
//! HMAC-SHA256(secret, canonical string); upper-case hex is accepted too.

use crate::money::from_cents;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The longest trade number a gateway may send.
pub const MAX_TRADE_NO_LEN: usize = 64;

/// Whether `trade_no` is a well-formed gateway trade number.
pub fn valid_trade_no(trade_no: &str) -> bool {
    !trade_no.is_empty()
        && trade_no.len() <= MAX_TRADE_NO_LEN
        && trade_no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The text the signature covers.
pub fn canonical(payment_id: Uuid, order_id: Uuid, amount_cents: i64, trade_no: &str) -> String {
    format!(
        "payment_id={}&order_id={}&amount={}&trade_no={trade_no}",
        payment_id.hyphenated(),
        order_id.hyphenated(),
        two_decimals(amount_cents)
    )
}

/// `1230` → `12.30`.
pub fn two_decimals(cents: i64) -> String {
    let mut amount = from_cents(cents);
    amount.rescale(2);
    amount.to_string()
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// Lower-case hex of HMAC-SHA256(`secret`, `canonical`).
pub fn sign(secret: &[u8], canonical: &str) -> String {
    let mut mac = mac(secret);
    mac.update(canonical.as_bytes());
    crate::auth::service::hex(&mac.finalize().into_bytes())
}

/// Whether `signature` (hex) is the HMAC of `canonical` under `secret`. The
/// comparison takes the same time wherever the first wrong byte is.
pub fn verify(secret: &[u8], canonical: &str, signature: &str) -> bool {
    let Some(bytes) = from_hex(signature) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(canonical.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"key";

    fn ids() -> (Uuid, Uuid) {
        (
            "6f1c2a3b-0000-4000-8000-000000000001".parse().unwrap(),
            "6f1c2a3b-0000-4000-8000-000000000002".parse().unwrap(),
        )
    }

    #[test]
    fn canonical_string_is_fixed() {
        let (payment, order) = ids();
        assert_eq!(
            canonical(payment, order, 1230, "GW-1"),
            "payment_id=6f1c2a3b-0000-4000-8000-000000000001&order_id=6f1c2a3b-0000-4000-8000-000000000002&amount=12.30&trade_no=GW-1"
        );
        assert_eq!(two_decimals(5), "0.05");
        assert_eq!(two_decimals(100), "1.00");
        assert_eq!(two_decimals(0), "0.00");
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn good_signatures_verify_and_forged_or_tampered_ones_do_not() {
        let (payment, order) = ids();
        let text = canonical(payment, order, 1230, "GW-1");
        let signature = sign(SECRET, &text);
        assert!(verify(SECRET, &text, &signature));
        assert!(verify(SECRET, &text, &signature.to_uppercase()));
        // Another key, another amount, another trade number, a flipped digit,
        // a truncated or non-hex signature: all refused.
        assert!(!verify(b"other", &text, &signature));
        assert!(!verify(
            SECRET,
            &canonical(payment, order, 1231, "GW-1"),
            &signature
        ));
        assert!(!verify(
            SECRET,
            &canonical(payment, order, 1230, "GW-2"),
            &signature
        ));
        let mut flipped = signature.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!verify(SECRET, &text, &String::from_utf8(flipped).unwrap()));
        assert!(!verify(SECRET, &text, &signature[..62]));
        assert!(!verify(SECRET, &text, ""));
        assert!(!verify(SECRET, &text, &"zz".repeat(32)));
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&crate::auth::service::hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("abc"), None);
    }

    #[test]
    fn trade_numbers() {
        assert!(valid_trade_no("GW-20260101_0001"));
        assert!(!valid_trade_no(""));
        assert!(!valid_trade_no("a&amount=1"));
        assert!(!valid_trade_no(&"x".repeat(65)));
    }
}
