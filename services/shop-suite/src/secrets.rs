//! The shop's own secrets: on the first run, a signing secret for every
//! service, the payment gateway's merchant key and callback secret, and the
//! demo logins (an operator and two customers) with random passwords,
//! written to `<data>/secrets.properties` (mode 0600); later runs read them
//! back. Nothing here has a default: a fresh data folder gets fresh
//! secrets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use shop_common::auth::{Keyring, ServiceKey};
use shop_common::service::SERVICE_NAMES;

use crate::acl::write_private;

/// The demo operator's login.
pub const OPERATOR_LOGIN: &str = "ops";
/// The demo customers' logins (and display names).
pub const CUSTOMERS: &[&str] = &["alice", "bob"];

/// Whose signed calls and events each service accepts: the user service
/// checks every service's token questions; goods, coupon and user take
/// reservations from order; order settles payments for pay and consumes
/// its own and pay's events; log and points consume events; pay is called
/// by no service (the gateway's callback carries the gateway's signature).
const TRUSTS: &[(&str, &[&str])] = &[
    ("user", SERVICE_NAMES),
    ("goods", &["order"]),
    ("coupon", &["order"]),
    ("order", &["order", "pay"]),
    ("pay", &[]),
    ("log", &["order", "pay"]),
    ("points", &["pay"]),
];

/// The shop's secrets and where they are kept.
pub struct Secrets {
    pub file: PathBuf,
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// The secrets under `data`: read from `<data>/secrets.properties` when
    /// it exists, generated (and written) otherwise.
    pub fn load_or_create(data: &Path) -> Result<Secrets> {
        let file = data.join("secrets.properties");
        if !file.exists() {
            write_private(&file, &render(&generate()?))?;
            tracing::info!(file = %file.display(), "generated the shop's secrets and demo logins");
        } else {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let values: BTreeMap<String, String> = props::parse(&text)
            .with_context(|| format!("reading {}", file.display()))?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        for key in names() {
            if values.get(&key).is_none_or(|v| v.is_empty()) {
                bail!(
                    "{} has no {key}; remove the file to have new secrets generated",
                    file.display()
                );
            }
        }
        Ok(Secrets { file, values })
    }

    fn value(&self, key: &str) -> &str {
        &self.values[key]
    }

    /// The signing key of service `name`.
    pub fn service_key(&self, name: &str) -> ServiceKey {
        ServiceKey::new(name, self.value(&format!("service.{name}")))
            .expect("generated secrets are valid keys")
    }

    /// The services `name` trusts, with their keys.
    pub fn trusted_by(&self, name: &str) -> Keyring {
        let mut keyring = Keyring::default();
        let trusted = TRUSTS
            .iter()
            .find(|(service, _)| *service == name)
            .map_or(&[][..], |(_, trusted)| *trusted);
        for caller in trusted {
            keyring.insert(self.service_key(caller));
        }
        keyring
    }

    /// The merchant key the pay service signs its gateway requests with.
    pub fn gateway_merchant_key(&self) -> &str {
        self.value("gateway.merchant_key")
    }

    /// The secret the gateway signs its callbacks with.
    pub fn gateway_callback_secret(&self) -> &str {
        self.value("gateway.callback_secret")
    }

    /// The password of a demo login ([`OPERATOR_LOGIN`] or one of
    /// [`CUSTOMERS`]).
    pub fn password(&self, login: &str) -> &str {
        self.value(&format!("login.{login}"))
    }
}

/// Every key the file holds.
fn names() -> Vec<String> {
    let mut names: Vec<String> = SERVICE_NAMES
        .iter()
        .map(|s| format!("service.{s}"))
        .collect();
    names.push("gateway.merchant_key".into());
    names.push("gateway.callback_secret".into());
    names.push(format!("login.{OPERATOR_LOGIN}"));
    names.extend(CUSTOMERS.iter().map(|c| format!("login.{c}")));
    names
}

/// `bytes` random bytes as hex, from the operating system's CSPRNG.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness for the secrets: {e}"))?;
    let mut hex = String::with_capacity(2 * bytes);
    for b in buf {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

fn generate() -> Result<Vec<(String, String)>> {
    names()
        .into_iter()
        .map(|name| {
            // Passwords are typed by people: 12 bytes (96 bits) is plenty.
            let bytes = if name.starts_with("login.") { 12 } else { 32 };
            Ok((name, random_hex(bytes)?))
        })
        .collect()
}

fn render(values: &[(String, String)]) -> String {
    let mut text = String::from(
        "# The shop's secrets, generated on the first run. service.<name> signs that\n\
         # service's calls and events; gateway.* are the fake payment gateway's keys;\n\
         # login.<name> is a demo login's password. Keep this file private.\n",
    );
    for (key, value) in values {
        let _ = writeln!(text, "{key}={value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_distinct_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secrets::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(&first.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let order = first.service_key("order");
        assert_ne!(order, first.service_key("pay"));
        assert_ne!(first.password("alice"), first.password("bob"));
        assert!(first.gateway_merchant_key().len() >= 32);
        let again = Secrets::load_or_create(dir.path()).unwrap();
        assert_eq!(again.service_key("order"), order);
        assert_eq!(
            again.password(OPERATOR_LOGIN),
            first.password(OPERATOR_LOGIN)
        );

        std::fs::create_dir(dir.path().join("other")).unwrap();
        let other = Secrets::load_or_create(&dir.path().join("other")).unwrap();
        assert_ne!(other.service_key("order"), order, "no fixed default");
    }

    #[test]
    fn each_service_trusts_only_its_callers() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::load_or_create(dir.path()).unwrap();
        let goods = secrets.trusted_by("goods");
        assert_eq!(goods.get("order"), Some(&secrets.service_key("order")));
        assert!(goods.get("pay").is_none() && goods.get("user").is_none());
        let user = secrets.trusted_by("user");
        assert!(SERVICE_NAMES.iter().all(|s| user.get(s).is_some()));
        assert!(secrets.trusted_by("points").get("order").is_none());
        assert_eq!(secrets.trusted_by("pay"), Keyring::default());
    }

    #[test]
    fn a_damaged_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = Secrets::load_or_create(dir.path()).unwrap().file;
        let text = std::fs::read_to_string(&file).unwrap();
        let cut: String = text
            .lines()
            .filter(|l| !l.starts_with("service.pay="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&file, cut).unwrap();
        let err = Secrets::load_or_create(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("service.pay"), "{err}");
    }
}
