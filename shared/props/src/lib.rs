//! Java `.properties` text, the format of RocketMQ's broker and name server
//! configuration files (and of our services' files).
//!
//! Supported: `#` and `!` comments, `key=value`, `key:value` and
//! `key value`, surrounding whitespace trimmed, a trailing `\` continuing a
//! value on the next line, and the escapes `\t \n \r \\ \= \: \uXXXX`.

/// One `key = value` entry and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A line that cannot be read as an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for PropertiesError {}

/// Parses properties text into entries in file order (a later duplicate key
/// wins when the caller folds them into a map).
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let start_line = index + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::from(trimmed);
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_entry(&logical);
        let key = unescape(key, start_line)?;
        if key.is_empty() {
            return Err(PropertiesError {
                line: start_line,
                reason: "an entry has no key".into(),
            });
        }
        entries.push(Entry {
            key,
            value: unescape(value.trim(), start_line)?,
            line: start_line,
        });
    }
    Ok(entries)
}

/// True when the line ends with an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (line[..i].trim_end(), &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str, line: usize) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| PropertiesError {
                        line,
                        reason: format!("invalid unicode escape \\u{hex}"),
                    })?;
                out.push(ch);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    #[test]
    fn reads_a_broker_file() {
        let text = "# broker-a\nbrokerClusterName = DefaultCluster\nbrokerName=broker-a\n! other comment\n\nbrokerId:0\nnamesrvAddr 127.0.0.1:9876;127.0.0.2:9876\ndeleteWhen=04\n";
        assert_eq!(
            pairs(text),
            vec![
                ("brokerClusterName".into(), "DefaultCluster".into()),
                ("brokerName".into(), "broker-a".into()),
                ("brokerId".into(), "0".into()),
                ("namesrvAddr".into(), "127.0.0.1:9876;127.0.0.2:9876".into()),
                ("deleteWhen".into(), "04".into()),
            ]
        );
        assert_eq!(parse(text).unwrap()[2].line, 6);
    }

    #[test]
    fn continuations_escapes_and_empty_values() {
        assert_eq!(
            pairs("path=/a/\\\n    b\nsep\\=key=v\\u0041\\t\nempty=\nbare\n"),
            vec![
                ("path".into(), "/a/b".into()),
                ("sep=key".into(), "vA\t".into()),
                ("empty".into(), String::new()),
                ("bare".into(), String::new()),
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_line() {
        assert_eq!(parse("a=1\n=2\n").unwrap_err().line, 2);
        assert_eq!(parse("a=\\u00G1\n").unwrap_err().line, 1);
    }
}
