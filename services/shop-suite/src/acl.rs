//! The shop's broker accounts: on the first run, one account per service
//! with exactly the rights its producers and consumers need, one for the
//! broker's registration with the name server and one for the operator's
//! `mqadmin`, with random secrets, written under `<data>/acl` (mode 0600);
//! later runs read them back.
//!
//! `<data>/acl` is laid out as a `ROCKETMQ_HOME`: `conf/plain_acl.yml` is
//! the broker's and name server's accounts file (RocketMQ's format), and
//! `conf/tools.yml` holds the operator's keys, where `mqadmin` looks for
//! them under `ROCKETMQ_HOME`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mq_acl::AclConfig;
use mq_client::Credentials;
use shop_common::events::{ORDER_CANCEL, PAY_REFUND, PAY_SUCCESS};

/// The operator's admin account (`mqadmin`).
pub const OPERATOR: &str = "shop-operator";
/// The broker's admin account, with which it registers at the name server.
pub const BROKER: &str = "shop-broker";

/// Bytes of randomness in a generated secret (192 bits, 48 hex digits).
const SECRET_BYTES: usize = 24;

/// One account of the file: its access key, whether it is an admin, and
/// its topic and group permissions (everything else is DENY).
struct Spec {
    access_key: &'static str,
    admin: bool,
    topics: &'static [(&'static str, &'static str)],
    groups: &'static [(&'static str, &'static str)],
}

/// The accounts: a service may publish only the event it owns (order
/// ORDER_CANCEL, pay PAY_SUCCESS) and subscribe only to what its consumer
/// groups consume; a group's retry topic follows the group.
const SPECS: &[Spec] = &[
    Spec {
        access_key: "shop-order",
        admin: false,
        topics: &[(ORDER_CANCEL, "PUB|SUB"), (PAY_SUCCESS, "SUB")],
        groups: &[
            (shop_order::PRODUCER_GROUP, "PUB"),
            (shop_order::events::CANCEL_GROUP, "SUB"),
            (shop_order::events::PAY_GROUP, "SUB"),
        ],
    },
    Spec {
        access_key: "shop-goods",
        admin: false,
        topics: &[(ORDER_CANCEL, "SUB")],
        groups: &[(shop_goods::events::CANCEL_GROUP, "SUB")],
    },
    Spec {
        access_key: "shop-coupon",
        admin: false,
        topics: &[(ORDER_CANCEL, "SUB")],
        groups: &[(shop_coupon::events::CANCEL_GROUP, "SUB")],
    },
    Spec {
        access_key: "shop-user",
        admin: false,
        topics: &[(ORDER_CANCEL, "SUB")],
        groups: &[(shop_user::events::CANCEL_GROUP, "SUB")],
    },
    Spec {
        access_key: "shop-pay",
        admin: false,
        topics: &[(PAY_SUCCESS, "PUB"), (PAY_REFUND, "PUB")],
        groups: &[(shop_pay::PRODUCER_GROUP, "PUB")],
    },
    Spec {
        access_key: "shop-log",
        admin: false,
        topics: &[
            (ORDER_CANCEL, "SUB"),
            (PAY_SUCCESS, "SUB"),
            (PAY_REFUND, "SUB"),
        ],
        groups: &[
            (shop_log::events::CANCEL_GROUP, "SUB"),
            (shop_log::events::PAY_GROUP, "SUB"),
            (shop_log::events::REFUND_GROUP, "SUB"),
        ],
    },
    Spec {
        access_key: "shop-points",
        admin: false,
        topics: &[(PAY_SUCCESS, "SUB")],
        groups: &[(shop_points::events::PAY_GROUP, "SUB")],
    },
    Spec {
        access_key: BROKER,
        admin: true,
        topics: &[],
        groups: &[],
    },
    Spec {
        access_key: OPERATOR,
        admin: true,
        topics: &[],
        groups: &[],
    },
];

/// The shop's accounts and where they are kept.
pub struct Accounts {
    /// The `ROCKETMQ_HOME` of the accounts (`<data>/acl`).
    pub home: PathBuf,
    /// The accounts file the broker and name server check requests against.
    pub file: PathBuf,
    keys: HashMap<String, Credentials>,
}

impl Accounts {
    /// The accounts under `data`: read from `<data>/acl/conf/plain_acl.yml`
    /// when it exists, generated (and written) otherwise. The operator's
    /// `tools.yml` is (re)written next to it.
    pub fn load_or_create(data: &Path) -> Result<Accounts> {
        let home = data.join("acl");
        let conf = home.join("conf");
        std::fs::create_dir_all(&conf)
            .with_context(|| format!("cannot create {}", conf.display()))?;
        for dir in [&home, &conf] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let file = conf.join("plain_acl.yml");
        if !file.exists() {
            write_private(&file, &render(&generate()?))?;
            tracing::info!(file = %file.display(), "generated the shop's broker accounts");
        } else {
            // A copy restored with a looser mode is tightened again.
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
        let mut parsed =
            AclConfig::load(&file).with_context(|| format!("reading {}", file.display()))?;
        if let Some(secrets) = outdated(&parsed, &file)? {
            // A data folder from an earlier version: its accounts keep their
            // secrets and get this version's rights (a new topic, a new group).
            write_private(&file, &render(&secrets))?;
            tracing::info!(file = %file.display(), "updated the shop's broker accounts to this version's rights");
            parsed =
                AclConfig::load(&file).with_context(|| format!("reading {}", file.display()))?;
        }
        let mut keys = HashMap::new();
        for spec in SPECS {
            let Some(account) = parsed.accounts.get(spec.access_key) else {
                bail!(
                    "{} has no account {}; remove the file to have new accounts generated",
                    file.display(),
                    spec.access_key
                );
            };
            keys.insert(
                spec.access_key.to_owned(),
                Credentials::new(&account.access_key, &account.secret_key),
            );
        }
        let accounts = Accounts { home, file, keys };
        let operator = accounts.get(OPERATOR);
        let tools = format!(
            "# The shop operator's keys, read by mqadmin with ROCKETMQ_HOME={}\naccessKey: {}\nsecretKey: \"{}\"\n",
            accounts.home.display(),
            operator.access_key,
            operator.secret_key
        );
        write_private(&conf.join("tools.yml"), &tools)?;
        Ok(accounts)
    }

    /// The keys of `access_key` (a service's `shop-<name>`, [`BROKER`] or
    /// [`OPERATOR`]).
    ///
    /// # Panics
    /// For an access key that is not one of the shop's accounts.
    pub fn get(&self, access_key: &str) -> &Credentials {
        &self.keys[access_key]
    }

    /// The keys of the service called `name`.
    pub fn service(&self, name: &str) -> Credentials {
        self.get(&format!("shop-{name}")).clone()
    }
}

/// The accounts with their present secrets when some account's rights are
/// not this version's (`None` when they all are). An account that is missing
/// is an error: its secret cannot be made up.
fn outdated(parsed: &AclConfig, file: &Path) -> Result<Option<Vec<(&'static Spec, String)>>> {
    let mut secrets = Vec::new();
    let mut stale = false;
    for spec in SPECS {
        let Some(account) = parsed.accounts.get(spec.access_key) else {
            bail!(
                "{} has no account {}; remove the file to have new accounts generated",
                file.display(),
                spec.access_key
            );
        };
        let wanted = |perms: &[(&str, &str)]| -> HashMap<String, mq_acl::Perm> {
            perms
                .iter()
                .filter_map(|(name, perm)| Some(((*name).to_owned(), mq_acl::Perm::parse(perm)?)))
                .collect()
        };
        stale |= account.admin != spec.admin
            || (!spec.admin
                && (account.topic_perms != wanted(spec.topics)
                    || account.group_perms != wanted(spec.groups)));
        secrets.push((spec, account.secret_key.clone()));
    }
    Ok(stale.then_some(secrets))
}

/// A fresh secret for every account, from the operating system's CSPRNG.
fn generate() -> Result<Vec<(&'static Spec, String)>> {
    SPECS
        .iter()
        .map(|spec| Ok((spec, crate::secrets::random_hex(SECRET_BYTES)?)))
        .collect()
}

/// The accounts file in RocketMQ's `plain_acl.yml` layout.
fn render(accounts: &[(&Spec, String)]) -> String {
    let mut text = String::from(
        "# The shop's broker and name server accounts, generated on the first run.\n\
         # Each service has its own; shop-broker registers the broker, shop-operator\n\
         # is for mqadmin (conf/tools.yml next to this file).\n\
         globalWhiteRemoteAddresses: []\naccounts:\n",
    );
    for (spec, secret) in accounts {
        let _ = write!(
            text,
            "  - accessKey: {}\n    secretKey: \"{secret}\"\n    admin: {}\n",
            spec.access_key, spec.admin
        );
        if spec.admin {
            continue;
        }
        text.push_str("    defaultTopicPerm: DENY\n    defaultGroupPerm: DENY\n");
        for (key, perms) in [("topicPerms", spec.topics), ("groupPerms", spec.groups)] {
            let _ = writeln!(text, "    {key}:");
            for (name, perm) in perms {
                let _ = writeln!(text, "      - {name}={perm}");
            }
        }
    }
    text
}

/// Writes `text` to `path` readable by its owner only, through a temporary
/// file renamed over it, so that a crash never leaves half a file.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_acl::Perm;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Accounts::load_or_create(dir.path()).unwrap();
        for file in [first.file.clone(), first.home.join("conf/tools.yml")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        let order = first.service("order");
        assert!(order.secret_key.len() >= 32, "at least 128 bits of hex");
        assert_ne!(order.secret_key, first.service("pay").secret_key);

        let again = Accounts::load_or_create(dir.path()).unwrap();
        assert_eq!(again.service("order").secret_key, order.secret_key);
        assert_eq!(
            again.get(OPERATOR).secret_key,
            first.get(OPERATOR).secret_key
        );
        let tools = std::fs::read_to_string(again.home.join("conf/tools.yml")).unwrap();
        let from_tools = Credentials::from_tools_yml(&tools, "tools.yml")
            .unwrap()
            .unwrap();
        assert_eq!(from_tools.secret_key, first.get(OPERATOR).secret_key);
    }

    #[test]
    fn an_earlier_versions_accounts_keep_their_secrets_and_get_todays_rights() {
        let dir = tempfile::tempdir().unwrap();
        let first = Accounts::load_or_create(dir.path()).unwrap();
        let pay_secret = first.service("pay").secret_key;
        // As written before PAY_REFUND existed.
        let text = std::fs::read_to_string(&first.file).unwrap();
        let old = text
            .replace("      - PAY_REFUND=PUB\n", "")
            .replace("      - PAY_REFUND=SUB\n", "")
            .replace("      - log-service-pay-refund=SUB\n", "");
        assert_ne!(old, text);
        std::fs::write(&first.file, old).unwrap();
        let again = Accounts::load_or_create(dir.path()).unwrap();
        assert_eq!(again.service("pay").secret_key, pay_secret);
        let parsed = AclConfig::load(&again.file).unwrap();
        assert_eq!(
            parsed.accounts["shop-pay"].topic_perms.get(PAY_REFUND),
            Some(&Perm::PUB)
        );
        assert!(parsed.accounts["shop-log"]
            .group_perms
            .contains_key(shop_log::events::REFUND_GROUP));
        let mode = std::fs::metadata(&again.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn only_order_publishes_order_cancel_and_only_pay_pay_success() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::load_or_create(dir.path()).unwrap();
        let parsed = AclConfig::load(&accounts.file).unwrap();
        let publishes = |topic: &str| {
            let mut who: Vec<&str> = parsed
                .accounts
                .values()
                .filter(|a| !a.admin)
                .filter(|a| {
                    let perm = a.topic_perms.get(topic).copied();
                    perm.unwrap_or(a.default_topic_perm).allows(Perm::PUB)
                })
                .map(|a| a.access_key.as_str())
                .collect();
            who.sort_unstable();
            who
        };
        assert_eq!(publishes(ORDER_CANCEL), ["shop-order"]);
        assert_eq!(publishes(PAY_SUCCESS), ["shop-pay"]);
        assert_eq!(publishes(PAY_REFUND), ["shop-pay"]);
        let points = &parsed.accounts["shop-points"];
        assert_eq!(points.default_topic_perm, Perm::DENY);
        assert_eq!(points.default_group_perm, Perm::DENY);
        assert!(parsed.accounts[OPERATOR].admin && parsed.accounts[BROKER].admin);
    }

    #[test]
    fn the_deploy_example_has_the_generated_layout() {
        let dir = tempfile::tempdir().unwrap();
        let generated = AclConfig::load(&Accounts::load_or_create(dir.path()).unwrap().file)
            .unwrap()
            .accounts;
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/acl/plain_acl.yml");
        let example = AclConfig::load(&example).unwrap().accounts;
        let mut names: Vec<_> = example.keys().collect();
        names.sort_unstable();
        let mut expected: Vec<_> = generated.keys().collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
        for (key, want) in &generated {
            let got = &example[key];
            assert_eq!(got.admin, want.admin, "{key}");
            assert_eq!(got.default_topic_perm, want.default_topic_perm, "{key}");
            assert_eq!(got.default_group_perm, want.default_group_perm, "{key}");
            assert_eq!(got.topic_perms, want.topic_perms, "{key}");
            assert_eq!(got.group_perms, want.group_perms, "{key}");
            assert!(
                got.secret_key.starts_with("REPLACE-ME"),
                "the example's secrets are placeholders: {key}"
            );
        }
    }
}
