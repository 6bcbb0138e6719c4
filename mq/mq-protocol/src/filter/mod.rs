//! Message filters by expression: RocketMQ's `ExpressionType` (TAG or
//! SQL92) and its SQL92 selector language (the `filter` module of RocketMQ,
//! `MessageSelector.bySql` in 4.x clients, a `FilterExpression` of type SQL
//! in 5.x), parsed by hand and evaluated over a message's properties.
//!
//! Layout: `lexer` turns the text into tokens, `parser` builds an
//! expression tree with the checks RocketMQ's parser makes (a `>` needs a
//! number or a property on each side, `IN` a property on its left, and so
//! on), `eval` evaluates a tree against a [`PropertySource`]. [`Selector`]
//! is the parsed filter; [`FilterError`] says what is wrong with one that
//! does not parse.
//!
//! The language, as RocketMQ 4.9 and 5.x accept it:
//! - identifiers name message properties (user properties and the system
//!   ones the message carries: `TAGS`, `KEYS`, `UNIQ_KEY`, ...), as
//!   written: `a` and `A` are two properties;
//! - literals: `'strings'` (`''` is a quote), integers (`5`, `5L`),
//!   decimals (`1.5`, `.5`, `1e3`), `TRUE`, `FALSE`, `NULL`;
//! - `=`, `<>`, `>`, `>=`, `<`, `<=`, `[NOT] BETWEEN x AND y`,
//!   `[NOT] IN ('a', ...)`, `IS [NOT] NULL`, `[NOT] CONTAINS 's'`,
//!   `[NOT] STARTSWITH 's'`, `[NOT] ENDSWITH 's'`, `AND`, `OR`, `NOT`,
//!   unary `+` and `-`, parentheses; keywords in any case.
//!
//! Evaluation follows RocketMQ's: a property's value is a string; compared
//! with a number it is read as that number's type (`a > 5` reads `a` as an
//! integer, `a > 5.5` as a double); `>`/`<` between two properties reads
//! both as doubles; a missing property makes a comparison unknown (NULL),
//! and NULL is not a match. A value that cannot be read as the number it is
//! compared with (`a > 5` with `a=abc`) is an evaluation error, and a
//! message whose evaluation fails does not match (RocketMQ logs and skips
//! it). `NOT` binds tighter than comparisons, as in RocketMQ's grammar:
//! `NOT a = 1` is `(NOT a) = 1`, so write `NOT (a = 1)`.
//!
//! Where we differ, on purpose: RocketMQ ignores what follows a complete
//! expression (`a = 1 b` filters on `a = 1`), we refuse it; RocketMQ
//! refuses the decimal literal `0.0` (a bug in its range check), we accept
//! it. Input is bounded ([`MAX_EXPRESSION_LEN`], [`MAX_DEPTH`]): it comes
//! from the network.

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use thiserror::Error;

pub use eval::EvalError;

use crate::message::{NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};

/// The longest expression accepted, in bytes. RocketMQ sets none; real
/// filters are a few dozen characters, and this one travels in heartbeats
/// and pull headers and is evaluated for every message of a pull.
pub const MAX_EXPRESSION_LEN: usize = 16 * 1024;

/// How deeply an expression may nest (parentheses, `NOT`, signs, chained
/// comparisons). Evaluation recurses once per level.
pub const MAX_DEPTH: usize = 64;

/// How a broker's remark refusing a filtered subscription begins while its
/// property filter (`enablePropertyFilter`) is off (RocketMQ's wording,
/// followed by the expression type); the 5.x proxy answers UNSUPPORTED for
/// it.
pub const PROPERTY_FILTER_DISABLED: &str =
    "The broker does not support consumer to filter message by";

/// How a subscription's expression is read (RocketMQ's `ExpressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpressionType {
    /// `*` or tags separated by `||`, matched by tag hash in the consume
    /// queue.
    Tag,
    /// A [`Selector`] over the message's properties.
    Sql92,
}

impl ExpressionType {
    /// RocketMQ's name for tag expressions.
    pub const TAG: &'static str = "TAG";
    /// RocketMQ's name for SQL92 expressions.
    pub const SQL92: &'static str = "SQL92";

    /// The type a subscription names: none, empty or `TAG` is a tag
    /// expression (RocketMQ's `isTagType`), `SQL92` a selector; the names
    /// are case-sensitive, as RocketMQ compares them.
    pub fn parse(name: Option<&str>) -> Result<ExpressionType, String> {
        match name {
            None | Some("") | Some(Self::TAG) => Ok(ExpressionType::Tag),
            Some(Self::SQL92) => Ok(ExpressionType::Sql92),
            Some(other) => Err(format!(
                "unknown expression type {other:?} (expected TAG or SQL92)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExpressionType::Tag => Self::TAG,
            ExpressionType::Sql92 => Self::SQL92,
        }
    }
}

impl fmt::Display for ExpressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an expression is not a SQL92 filter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid SQL92 filter at character {position}: {reason}")]
pub struct FilterError {
    /// 1-based character position in the expression.
    pub position: usize,
    pub reason: String,
}

impl FilterError {
    /// An error at byte offset `at` of `text`.
    fn new(text: &str, at: usize, reason: impl Into<String>) -> FilterError {
        let at = at.min(text.len());
        let position = text.get(..at).map_or(at, |before| before.chars().count()) + 1;
        FilterError {
            position,
            reason: reason.into(),
        }
    }
}

/// Where an expression finds a message's properties.
pub trait PropertySource {
    /// The value of property `name`, if the message has it.
    fn property(&self, name: &str) -> Option<&str>;
}

impl PropertySource for BTreeMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl PropertySource for HashMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Properties in their stored form, `name\u0001value\u0002...`, read in
/// place: what the broker filters a stored message by without decoding it.
/// A name given twice has its last value, as a decoded map would.
#[derive(Debug, Clone, Copy)]
pub struct EncodedProperties<'a>(pub &'a str);

impl PropertySource for EncodedProperties<'_> {
    fn property(&self, name: &str) -> Option<&str> {
        // From the end: the first found is the last given.
        self.0
            .rsplit(PROPERTY_SEPARATOR)
            .filter_map(|pair| pair.split_once(NAME_VALUE_SEPARATOR))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// A parsed SQL92 filter (RocketMQ's compiled `BooleanExpression`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    root: parser::Expr,
}

impl Selector {
    /// Parses `text`, with the checks RocketMQ's parser makes.
    pub fn parse(text: &str) -> Result<Selector, FilterError> {
        if text.len() > MAX_EXPRESSION_LEN {
            return Err(FilterError {
                position: MAX_EXPRESSION_LEN + 1,
                reason: format!(
                    "the expression is {} bytes long, more than the {MAX_EXPRESSION_LEN} allowed",
                    text.len()
                ),
            });
        }
        if text.trim().is_empty() {
            return Err(FilterError {
                position: 1,
                reason: "the expression is empty".into(),
            });
        }
        Ok(Selector {
            root: parser::parse(text)?,
        })
    }

    /// Whether a message with `properties` matches: the expression is
    /// TRUE. Unknown (NULL) and evaluation errors do not match.
    pub fn matches(&self, properties: &dyn PropertySource) -> bool {
        matches!(self.evaluate(properties), Ok(Some(true)))
    }

    /// The expression's value for a message with `properties`: TRUE,
    /// FALSE, unknown (`None`), or the error RocketMQ would log.
    pub fn evaluate(&self, properties: &dyn PropertySource) -> Result<Option<bool>, EvalError> {
        eval::evaluate_bool(&self.root, properties)
    }
}
