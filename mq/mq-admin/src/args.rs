//! RocketMQ-style flags: `-n 127.0.0.1:9876 -t TopicTest -r 8`, each flag a
//! letter taking a value (or none, for switches), as Apache Commons CLI
//! parses them in RocketMQ's tools.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

/// One flag a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    pub short: char,
    pub long: &'static str,
    pub help: &'static str,
    pub takes_value: bool,
    pub required: bool,
}

/// `-n` is accepted by every command.
pub const NAMESRV: FlagSpec = FlagSpec {
    short: 'n',
    long: "namesrvAddr",
    help:
        "Name server address list, eg: '192.168.0.1:9876;192.168.0.2:9876' (default: NAMESRV_ADDR)",
    takes_value: true,
    required: false,
};

/// The parsed flags of one command.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<char, String>,
}

impl Flags {
    pub fn parse(specs: &[FlagSpec], argv: &[String]) -> Result<Flags> {
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < argv.len() {
            let arg = &argv[i];
            let spec = specs
                .iter()
                .chain(std::iter::once(&NAMESRV))
                .find(|s| {
                    arg.strip_prefix('-')
                        .is_some_and(|a| a.len() == 1 && a.starts_with(s.short))
                        || arg.strip_prefix("--") == Some(s.long)
                })
                .ok_or_else(|| anyhow!("unknown option {arg}"))?;
            if spec.takes_value {
                let value = argv.get(i + 1).ok_or_else(|| {
                    anyhow!("option -{} ({}) needs a value", spec.short, spec.long)
                })?;
                values.insert(spec.short, value.clone());
                i += 2;
            } else {
                values.insert(spec.short, "true".to_owned());
                i += 1;
            }
        }
        for spec in specs.iter().filter(|s| s.required) {
            if !values.contains_key(&spec.short) {
                bail!("missing required option -{} ({})", spec.short, spec.long);
            }
        }
        Ok(Flags { values })
    }

    pub fn get(&self, short: char) -> Option<&str> {
        self.values.get(&short).map(String::as_str)
    }

    /// A required value (already checked by [`Flags::parse`]).
    pub fn value(&self, short: char) -> Result<&str> {
        self.get(short)
            .ok_or_else(|| anyhow!("missing option -{short}"))
    }

    /// A number, or `default` when the flag is absent.
    pub fn number<T: std::str::FromStr>(&self, short: char, default: T) -> Result<T> {
        match self.get(short) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| anyhow!("option -{short} must be a number, got {v:?}")),
        }
    }

    /// The name servers: `-n`, else NAMESRV_ADDR.
    pub fn namesrv(&self) -> Result<String> {
        match self.get('n') {
            Some(n) => Ok(n.to_owned()),
            None => std::env::var("NAMESRV_ADDR")
                .map_err(|_| anyhow!("no name server: use -n or set NAMESRV_ADDR")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec {
            short: 't',
            long: "topic",
            help: "",
            takes_value: true,
            required: true,
        },
        FlagSpec {
            short: 'o',
            long: "order",
            help: "",
            takes_value: false,
            required: false,
        },
        FlagSpec {
            short: 'r',
            long: "readQueueNums",
            help: "",
            takes_value: true,
            required: false,
        },
    ];

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_parse_like_rocketmqs_tools() {
        let f = Flags::parse(SPECS, &argv("-n 1.2.3.4:9876 -t T -o --readQueueNums 4")).unwrap();
        assert_eq!(f.get('t'), Some("T"));
        assert_eq!(f.get('o'), Some("true"));
        assert_eq!(f.number('r', 8).unwrap(), 4);
        assert_eq!(f.namesrv().unwrap(), "1.2.3.4:9876");
    }

    #[test]
    fn bad_flags_are_one_clear_error() {
        assert!(Flags::parse(SPECS, &argv("-x 1 -t T"))
            .unwrap_err()
            .to_string()
            .contains("unknown option -x"));
        assert!(Flags::parse(SPECS, &argv("-r 4"))
            .unwrap_err()
            .to_string()
            .contains("missing required option -t"));
        assert!(Flags::parse(SPECS, &argv("-t"))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        let f = Flags::parse(SPECS, &argv("-t T -r four")).unwrap();
        assert!(f
            .number('r', 8)
            .unwrap_err()
            .to_string()
            .contains("must be a number"));
    }
}
