//! Money: `Decimal` in the domain and the API, whole cents (`i64`) in the
//! database, so that SQLite and PostgreSQL store and compare amounts exactly.

use rust_decimal::Decimal;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("amount {0} has more than two decimal places")]
    TooPrecise(Decimal),
    #[error("amount {0} is out of range")]
    OutOfRange(Decimal),
}

/// `12.34` → `1234`. Refuses fractions of a cent instead of rounding them.
pub fn to_cents(amount: Decimal) -> Result<i64, MoneyError> {
    let normalized = amount.normalize();
    if normalized.scale() > 2 {
        return Err(MoneyError::TooPrecise(amount));
    }
    let cents = amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or(MoneyError::OutOfRange(amount))?;
    i64::try_from(cents).map_err(|_| MoneyError::OutOfRange(amount))
}

/// `1234` → `12.34`.
pub fn from_cents(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn cents_round_trip() {
        for (amount, cents) in [
            ("12.34", 1234),
            ("0.01", 1),
            ("100", 10000),
            ("-5.5", -550),
            ("1.230", 123),
        ] {
            assert_eq!(to_cents(d(amount)), Ok(cents), "{amount}");
            assert_eq!(from_cents(cents), d(amount).normalize());
        }
    }

    #[test]
    fn fractions_of_a_cent_and_huge_amounts_are_refused() {
        assert_eq!(
            to_cents(d("0.001")),
            Err(MoneyError::TooPrecise(d("0.001")))
        );
        assert!(matches!(
            to_cents(d("99999999999999999999")),
            Err(MoneyError::OutOfRange(_))
        ));
    }
}
