//! Tokens of a SQL92 filter, as the token section of RocketMQ's
//! `SelectorParser.jj` defines them: keywords and identifiers (keywords
//! case-insensitive, identifiers as written), string literals in single
//! quotes (`''` is a quote), decimal and floating-point literals, the
//! comparison operators, parentheses, commas and signs; white space,
//! `-- line` and `/* block */` comments between them.

use super::FilterError;

/// A reserved word (matched case-insensitively, and only as a whole word:
/// `notes` is an identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
}

impl Keyword {
    const ALL: [(&'static str, Keyword); 12] = [
        ("NOT", Keyword::Not),
        ("AND", Keyword::And),
        ("OR", Keyword::Or),
        ("BETWEEN", Keyword::Between),
        ("IN", Keyword::In),
        ("TRUE", Keyword::True),
        ("FALSE", Keyword::False),
        ("NULL", Keyword::Null),
        ("IS", Keyword::Is),
        ("CONTAINS", Keyword::Contains),
        ("STARTSWITH", Keyword::StartsWith),
        ("ENDSWITH", Keyword::EndsWith),
    ];

    fn of(word: &str) -> Option<Keyword> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, k)| *k)
    }

    pub(super) fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(name, _)| name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
    Keyword(Keyword),
    /// A property name, as written.
    Ident(&'a str),
    /// A string literal, quotes removed and `''` decoded.
    Str(String),
    /// A decimal literal's digits (a trailing `L` removed).
    Decimal(&'a str),
    /// A floating-point literal as written.
    Float(&'a str),
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Keyword(k) => k.name().to_owned(),
            Tok::Ident(name) => format!("identifier {name}"),
            Tok::Str(s) => format!("string '{}'", s.replace('\'', "''")),
            Tok::Decimal(d) => format!("number {d}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Eq => "'='".into(),
            Tok::Ne => "'<>'".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

/// A token and the byte offset it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    pub tok: Tok<'a>,
    pub at: usize,
}

/// Every token of `text`, ending with [`Tok::Eof`].
pub(super) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                // To the end of the line (or of the text).
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or_else(|| FilterError::new(text, at, "the comment is not closed"))?;
                i += 2 + end + 2;
                continue;
            }
            b'\'' => {
                let (s, next) = string_literal(text, i)?;
                i = next;
                Tok::Str(s)
            }
            b'0'..=b'9' => {
                let (tok, next) = number(text, i);
                i = next;
                tok
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, next) = number(text, i);
                i = next;
                tok
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                let end = text[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                    .map_or(text.len(), |n| i + n);
                let word = &text[i..end];
                i = end;
                Keyword::of(word).map_or(Tok::Ident(word), Tok::Keyword)
            }
            b'=' => {
                i += 1;
                Tok::Eq
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => {
                    i += 2;
                    Tok::Ne
                }
                Some(b'=') => {
                    i += 2;
                    Tok::Le
                }
                _ => {
                    i += 1;
                    Tok::Lt
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Ge
                } else {
                    i += 1;
                    Tok::Gt
                }
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'+' => {
                i += 1;
                Tok::Plus
            }
            b'-' => {
                i += 1;
                Tok::Minus
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                let hint = if ch == '"' {
                    " (strings are in single quotes)"
                } else if ch == '!' {
                    " (not equal is <>)"
                } else {
                    ""
                };
                return Err(FilterError::new(
                    text,
                    at,
                    format!("unexpected character {ch:?}{hint}"),
                ));
            }
        };
        out.push(Token { tok, at });
    }
    out.push(Token {
        tok: Tok::Eof,
        at: text.len(),
    });
    Ok(out)
}

/// The string literal whose opening quote is at `start`, and the offset
/// after its closing quote.
fn string_literal(text: &str, start: usize) -> Result<(String, usize), FilterError> {
    let mut value = String::new();
    let mut rest = &text[start + 1..];
    let mut pos = start + 1;
    loop {
        let Some(quote) = rest.find('\'') else {
            return Err(FilterError::new(text, start, "the string is not closed"));
        };
        value.push_str(&rest[..quote]);
        pos += quote + 1;
        rest = &rest[quote + 1..];
        if let Some(after) = rest.strip_prefix('\'') {
            value.push('\'');
            pos += 1;
            rest = after;
        } else {
            return Ok((value, pos));
        }
    }
}

/// The longest number at `start`: `5`, `5L`, `5.`, `5.5`, `.5`, `5e3`,
/// `5.5E-3` (RocketMQ's DECIMAL_LITERAL and FLOATING_POINT_LITERAL). What
/// follows it is the next token's business (`5abc` is `5` then `abc`).
fn number(text: &str, start: usize) -> (Tok<'_>, usize) {
    let bytes = text.as_bytes();
    let digits_from = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    // The end of an exponent starting at `i`, if one does.
    let exponent = |i: usize| {
        if !matches!(bytes.get(i), Some(b'e' | b'E')) {
            return None;
        }
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits_from(j);
        (end > j).then_some(end)
    };
    let int_end = digits_from(start);
    if bytes.get(int_end) == Some(&b'.') {
        let frac_end = digits_from(int_end + 1);
        let end = exponent(frac_end).unwrap_or(frac_end);
        return (Tok::Float(&text[start..end]), end);
    }
    if let Some(end) = exponent(int_end) {
        return (Tok::Float(&text[start..end]), end);
    }
    // "0" is a literal of its own: "07" is "0" then "7", as in RocketMQ.
    if bytes[start] == b'0' {
        return (Tok::Decimal("0"), start + 1);
    }
    if matches!(bytes.get(int_end), Some(b'l' | b'L')) {
        return (Tok::Decimal(&text[start..int_end]), int_end + 1);
    }
    (Tok::Decimal(&text[start..int_end]), int_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok<'_>> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn keywords_ignore_case_and_identifiers_keep_it() {
        assert_eq!(
            toks("a AnD notes NOT $x_1 Between"),
            [
                Tok::Ident("a"),
                Tok::Keyword(Keyword::And),
                Tok::Ident("notes"),
                Tok::Keyword(Keyword::Not),
                Tok::Ident("$x_1"),
                Tok::Keyword(Keyword::Between),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators_take_the_longest_match() {
        assert_eq!(
            toks("<><=<>=>=< >(),+-"),
            [
                Tok::Ne,
                Tok::Le,
                Tok::Ne,
                Tok::Eq,
                Tok::Ge,
                Tok::Lt,
                Tok::Gt,
                Tok::LParen,
                Tok::RParen,
                Tok::Comma,
                Tok::Plus,
                Tok::Minus,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_as_rocketmq_reads_them() {
        assert_eq!(toks("12")[0], Tok::Decimal("12"));
        assert_eq!(toks("12L")[0], Tok::Decimal("12"));
        assert_eq!(toks("12l")[0], Tok::Decimal("12"));
        assert_eq!(toks("1.5")[0], Tok::Float("1.5"));
        assert_eq!(toks("1.")[0], Tok::Float("1."));
        assert_eq!(toks(".5")[0], Tok::Float(".5"));
        assert_eq!(toks("1e3")[0], Tok::Float("1e3"));
        assert_eq!(toks("1.5E-3")[0], Tok::Float("1.5E-3"));
        // An `e` that starts no exponent is the next token.
        assert_eq!(toks("1e"), [Tok::Decimal("1"), Tok::Ident("e"), Tok::Eof]);
        assert_eq!(
            toks("007"),
            [
                Tok::Decimal("0"),
                Tok::Decimal("0"),
                Tok::Decimal("7"),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("5abc"),
            [Tok::Decimal("5"), Tok::Ident("abc"), Tok::Eof]
        );
    }

    #[test]
    fn strings_decode_doubled_quotes() {
        assert_eq!(toks("'it''s'")[0], Tok::Str("it's".into()));
        assert_eq!(toks("''")[0], Tok::Str(String::new()));
        assert_eq!(toks("''''")[0], Tok::Str("'".into()));
        assert_eq!(toks("'a\nb'")[0], Tok::Str("a\nb".into()));
        assert_eq!(toks("'héllo'")[0], Tok::Str("héllo".into()));
        assert!(tokenize("'open").is_err());
        assert!(tokenize("'it''s").is_err());
    }

    #[test]
    fn comments_and_white_space_are_skipped() {
        assert_eq!(
            toks("a -- a comment\n= /* another\n one */ 1 --"),
            [Tok::Ident("a"), Tok::Eq, Tok::Decimal("1"), Tok::Eof]
        );
        assert!(tokenize("a /* open").is_err());
    }

    #[test]
    fn unknown_characters_are_errors_with_their_position() {
        let e = tokenize("a != 1").unwrap_err();
        assert_eq!(e.position, 3);
        assert!(e.reason.contains("<>"), "{e}");
        assert!(tokenize("a = \"x\"").unwrap_err().reason.contains("single"));
        assert_eq!(tokenize("é").unwrap_err().position, 1);
    }
}
