//! Evaluation of a parsed filter against a message's properties, value by
//! value as RocketMQ's expression classes compute it (Java's `Integer`,
//! `Long`, `Double`, `String`, `Boolean` and `null`, and the conversions
//! of `ComparisonExpression.__compare`).

use std::cmp::Ordering;

use thiserror::Error;

use super::parser::{Expr, Literal, TextOp};
use super::PropertySource;

/// A value during evaluation. Properties are strings; numbers come from
/// literals (and their negations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

impl<'a> Value<'a> {
    pub(super) fn of_literal(literal: &'a Literal) -> Value<'a> {
        match literal {
            Literal::Str(s) => Value::Str(s),
            Literal::Int(i) => Value::Int(*i),
            Literal::Long(l) => Value::Long(*l),
            Literal::Double(d) => Value::Double(*d),
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Long(l) => l.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Str(s) => format!("'{s}'"),
        }
    }
}

/// Why a message could not be evaluated (RocketMQ logs the exception and
/// does not deliver the message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct EvalError(String);

/// The root condition's value: TRUE, FALSE or unknown.
pub(super) fn evaluate_bool(
    root: &Expr,
    properties: &dyn PropertySource,
) -> Result<Option<bool>, EvalError> {
    Ok(match evaluate(root, properties)? {
        Value::Bool(b) => Some(b),
        _ => None,
    })
}

fn evaluate<'a>(
    expr: &'a Expr,
    properties: &'a dyn PropertySource,
) -> Result<Value<'a>, EvalError> {
    let eval = |e: &'a Expr| evaluate(e, properties);
    Ok(match expr {
        Expr::Literal(l) => Value::of_literal(l),
        Expr::Bool(b) => b.map_or(Value::Null, Value::Bool),
        Expr::Property(name) => properties.property(name).map_or(Value::Null, Value::Str),
        Expr::Negate(operand) => match eval(operand)? {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Long(l) => Value::Long(l.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        },
        Expr::And(items) => {
            let mut unknown = false;
            for item in items {
                match condition(eval(item)?)? {
                    Some(false) => return Ok(Value::Bool(false)),
                    Some(true) => {}
                    None => unknown = true,
                }
            }
            if unknown {
                Value::Null
            } else {
                Value::Bool(true)
            }
        }
        Expr::Or(items) => {
            let mut unknown = false;
            for item in items {
                match condition(eval(item)?)? {
                    Some(true) => return Ok(Value::Bool(true)),
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            if unknown {
                Value::Null
            } else {
                Value::Bool(false)
            }
        }
        Expr::Not(operand) => match condition(eval(operand)?)? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        },
        Expr::BoolCast(operand) => match eval(operand)? {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Bool(false),
        },
        Expr::Equal(left, right) => {
            let (lv, rv) = (eval(left)?, eval(right)?);
            match (lv, rv) {
                (Value::Null, Value::Null) => Value::Bool(true),
                (Value::Null, _) => Value::Null,
                (_, Value::Null) => Value::Bool(false),
                _ if java_equals(&lv, &rv) => Value::Bool(true),
                _ => Value::Bool(compare(&lv, &rv)? == Ordering::Equal),
            }
        }
        Expr::Compare(relation, left, right) => {
            let lv = eval(left)?;
            if lv == Value::Null {
                return Ok(Value::Null);
            }
            let rv = eval(right)?;
            if rv == Value::Null {
                return Ok(Value::Null);
            }
            let ordering = match (lv, rv) {
                // Two strings are compared as numbers, or not at all.
                (Value::Str(a), Value::Str(b)) => match (java_double(a), java_double(b)) {
                    (Some(a), Some(b)) => double_cmp(a, b),
                    _ => {
                        return Err(EvalError(format!(
                            "cannot compare '{a}' and '{b}' by >, >=, < or <=: not numbers"
                        )))
                    }
                },
                _ => compare(&lv, &rv)?,
            };
            Value::Bool(relation.holds(ordering))
        }
        Expr::In {
            property,
            values,
            negated,
        } => match properties.property(property) {
            None => Value::Null,
            Some(value) => Value::Bool(values.iter().any(|v| v == value) != *negated),
        },
        Expr::Text {
            op,
            negated,
            operand,
            search,
        } => {
            if search.is_empty() {
                return Ok(Value::Bool(false));
            }
            match eval(operand)? {
                Value::Str(s) => {
                    let found = match op {
                        TextOp::Contains => s.contains(search.as_str()),
                        TextOp::StartsWith => s.starts_with(search.as_str()),
                        TextOp::EndsWith => s.ends_with(search.as_str()),
                    };
                    Value::Bool(found != *negated)
                }
                _ => Value::Bool(false),
            }
        }
    })
}

/// A condition's value; anything but a boolean or NULL is Java's
/// `ClassCastException`.
fn condition(value: Value<'_>) -> Result<Option<bool>, EvalError> {
    match value {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        other => Err(EvalError(format!(
            "{} is not a condition",
            other.describe()
        ))),
    }
}

/// Java's `equals` between two values: same type and value (`Double`
/// compares bits, so NaN equals NaN).
fn java_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Long(a), Value::Long(b)) => a == b,
        (Value::Double(a), Value::Double(b)) => double_cmp(*a, *b) == Ordering::Equal,
        (Value::Str(a), Value::Str(b)) => a == b,
        _ => false,
    }
}

/// RocketMQ's `ComparisonExpression.__compare` (with its string
/// conversions on): values of two types are brought to one, a string by
/// reading it as the other side's type; types it cannot bring together
/// compare as "less" (Java's -1).
pub(super) fn compare(left: &Value<'_>, right: &Value<'_>) -> Result<Ordering, EvalError> {
    use Value::*;
    let less = Ok(Ordering::Less);
    match (*left, *right) {
        (Bool(a), Bool(b)) => Ok(a.cmp(&b)),
        (Int(a), Int(b)) => Ok(a.cmp(&b)),
        (Long(a), Long(b)) => Ok(a.cmp(&b)),
        (Double(a), Double(b)) => Ok(double_cmp(a, b)),
        (Str(a), Str(b)) => Ok(a.encode_utf16().cmp(b.encode_utf16())),
        // RocketMQ casts the Boolean to a String here and fails.
        (Bool(_), Str(s)) => Err(EvalError(format!(
            "cannot compare a boolean with the string '{s}'"
        ))),
        (Int(a), Long(b)) => Ok(i64::from(a).cmp(&b)),
        (Long(a), Int(b)) => Ok(a.cmp(&i64::from(b))),
        (Int(a), Double(b)) => Ok(double_cmp(f64::from(a), b)),
        (Double(a), Int(b)) => Ok(double_cmp(a, f64::from(b))),
        (Long(a), Double(b)) => Ok(double_cmp(a as f64, b)),
        (Double(a), Long(b)) => Ok(double_cmp(a, b as f64)),
        (Int(a), Str(s)) => Ok(a.cmp(&java_int(s)?)),
        (Long(a), Str(s)) => Ok(a.cmp(&java_long(s)?)),
        (Double(a), Str(s)) => Ok(double_cmp(a, read_double(s)?)),
        (Str(s), Int(b)) => Ok(java_int(s)?.cmp(&b)),
        (Str(s), Long(b)) => Ok(java_long(s)?.cmp(&b)),
        (Str(s), Double(b)) => Ok(double_cmp(read_double(s)?, b)),
        (Str(s), Bool(b)) => Ok(s.eq_ignore_ascii_case("true").cmp(&b)),
        _ => less,
    }
}

fn not_a(kind: &str, s: &str) -> EvalError {
    EvalError(format!("'{s}' is not {kind}"))
}

/// Java's `Integer.valueOf(String)`.
fn java_int(s: &str) -> Result<i32, EvalError> {
    s.parse().map_err(|_| not_a("an integer", s))
}

/// Java's `Long.valueOf(String)`.
fn java_long(s: &str) -> Result<i64, EvalError> {
    s.parse().map_err(|_| not_a("an integer", s))
}

fn read_double(s: &str) -> Result<f64, EvalError> {
    java_double(s).ok_or_else(|| not_a("a number", s))
}

/// Java's `Double.valueOf(String)` for decimal text: surrounding white
/// space (and control characters) ignored, an optional sign, `NaN`,
/// `Infinity`, or digits with an optional fraction, exponent and `f`/`d`
/// suffix. (Java's hexadecimal form is not read.)
pub(super) fn java_double(s: &str) -> Option<f64> {
    let s = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body
                .strip_suffix(['f', 'F', 'd', 'D'])
                .filter(|b| !b.is_empty())
                .unwrap_or(body);
            let decimal = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && body.bytes().any(|b| b.is_ascii_digit())
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if !decimal {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Java's `Double.compareTo`: -0.0 below 0.0, NaN above everything and
/// equal to itself.
fn double_cmp(a: f64, b: f64) -> Ordering {
    let canonical = |x: f64| if x.is_nan() { f64::NAN } else { x };
    canonical(a).total_cmp(&canonical(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_read_as_java_reads_them() {
        assert_eq!(java_double("5"), Some(5.0));
        assert_eq!(java_double(" 5.5 "), Some(5.5));
        assert_eq!(java_double("-1e3"), Some(-1000.0));
        assert_eq!(java_double("+.5"), Some(0.5));
        assert_eq!(java_double("5."), Some(5.0));
        assert_eq!(java_double("2.5d"), Some(2.5));
        assert_eq!(java_double("2f"), Some(2.0));
        assert_eq!(java_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(java_double("NaN").unwrap().is_nan());
        for bad in [
            "", " ", "abc", "inf", "infinity", "nan", "1e", ".", "--5", "5x", "d", "0x10", "1,5",
        ] {
            assert_eq!(java_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_read_as_java_reads_them() {
        assert_eq!(java_int("+5"), Ok(5));
        assert_eq!(java_int("-2147483648"), Ok(i32::MIN));
        assert!(java_int("2147483648").is_err());
        assert!(java_int(" 5").is_err());
        assert!(java_int("5.0").is_err());
        assert_eq!(java_long("2147483648"), Ok(2_147_483_648));
    }

    #[test]
    fn double_order_is_javas() {
        assert_eq!(double_cmp(-0.0, 0.0), Ordering::Less);
        assert_eq!(double_cmp(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(double_cmp(f64::NAN, -f64::NAN), Ordering::Equal);
        assert_eq!(double_cmp(1.0, 2.0), Ordering::Less);
    }

    #[test]
    fn values_of_two_types_meet_as_rocketmq_brings_them_together() {
        use Value::*;
        assert_eq!(compare(&Str("10"), &Int(9)), Ok(Ordering::Greater));
        assert_eq!(compare(&Int(9), &Str("10")), Ok(Ordering::Less));
        assert_eq!(compare(&Str("10"), &Double(10.5)), Ok(Ordering::Less));
        assert_eq!(compare(&Str("3000000000"), &Long(5)), Ok(Ordering::Greater));
        assert!(
            compare(&Str("3000000000"), &Int(5)).is_err(),
            "not an Integer"
        );
        assert!(compare(&Str("5.5"), &Int(5)).is_err());
        assert_eq!(compare(&Int(1), &Long(1)), Ok(Ordering::Equal));
        assert_eq!(compare(&Double(1.0), &Int(1)), Ok(Ordering::Equal));
        assert_eq!(compare(&Str("TRUE"), &Bool(true)), Ok(Ordering::Equal));
        assert_eq!(compare(&Str("yes"), &Bool(true)), Ok(Ordering::Less));
        assert!(compare(&Bool(true), &Str("true")).is_err());
        assert_eq!(compare(&Int(1), &Bool(true)), Ok(Ordering::Less));
        assert_eq!(compare(&Bool(true), &Int(1)), Ok(Ordering::Less));
    }
}
