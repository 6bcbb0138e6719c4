//! The console's configuration: rocketmq-dashboard's `application.properties`
//! keys and its `users.properties` accounts.
//!
//! Keys read (others are reported as unknown so a typo is visible):
//! - `server.address` (default `127.0.0.1`: loopback unless asked) and
//!   `server.port` (default 8080);
//! - `rocketmq.config.namesrvAddr` (several separated by `;` or `,`) or the
//!   dashboard's newer `rocketmq.config.namesrvAddrs`;
//! - `rocketmq.config.loginRequired` (default **true**: the console can
//!   delete topics and move offsets, so it asks who is there unless told not
//!   to; the dashboard's default is false);
//! - `rocketmq.config.dataPath`: the folder of `users.properties` (default:
//!   the folder of the configuration file);
//! - `rocketmq.config.accessKey` / `rocketmq.config.secretKey`: the admin
//!   account the console signs its requests with when ACL is on;
//! - `server.servlet.session.timeout`: idle time after which a log-in ends
//!   (Spring's key; seconds, or with an `s`, `m` or `h` suffix; default 30m).
//!
//! The data path also holds the audit log (`audit.log`, see
//! [`crate::audit`]).
//!
//! The shop pages (orders, saga timelines, invariants; beyond the
//! dashboard) need the shop's services and an operator login there; they
//! are off unless every one of these keys is given (there is no default
//! login or password):
//! - `shop.orderUrl`, `shop.goodsUrl`, `shop.couponUrl`, `shop.userUrl`,
//!   `shop.payUrl`, `shop.logUrl`, `shop.pointsUrl`: each service's base
//!   URL, e.g. `http://127.0.0.1:8081`;
//! - `shop.operatorLogin` / `shop.operatorPassword`: an operator of the
//!   user service (its operators file), whose token reads the services'
//!   operator API.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_client::Credentials;

pub use crate::shop::ShopConfig;

/// Name of the accounts file under the data path, as the dashboard names it.
pub const USERS_FILE: &str = "users.properties";

/// Default HTTP port (`server.port`), the dashboard's.
pub const DEFAULT_PORT: u16 = 8080;

/// Default idle time of a log-in.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often the dashboard's time series sample the cluster by default.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(60);

/// Largest accounts or configuration file read; a bigger one is a mistake.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A configuration that cannot be used, with what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{from}: {reason}")]
    Invalid { from: String, reason: String },
}

fn invalid(from: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        from: from.to_owned(),
        reason: reason.into(),
    }
}

/// An operator account of `users.properties` (`name=password[,1]`; `1`
/// makes an admin, who may change the cluster; `0` or nothing a viewer).
/// `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
    pub admin: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn new(name: impl Into<String>, password: impl Into<String>, admin: bool) -> User {
        User {
            name: name.into(),
            password: password.into(),
            admin,
        }
    }
}

/// Where the operator accounts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Users {
    /// These accounts, fixed (the all-in-one shop generates them).
    Fixed(Vec<User>),
    /// A `users.properties` file, read again at every log-in so that an
    /// edit takes effect without a restart, as the dashboard's does.
    File(PathBuf),
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Where the binary listens (`server.address`, `server.port`);
    /// [`crate::serve`] is given a bound listener instead.
    pub listen: SocketAddr,
    /// The name servers to pick from; the first is used at start.
    pub namesrv_addrs: Vec<String>,
    /// Whether every page but the log-in page needs a log-in.
    pub login_required: bool,
    pub users: Users,
    /// The account requests to the cluster are signed with.
    pub credentials: Option<Credentials>,
    /// Idle time after which a log-in ends.
    pub session_timeout: Duration,
    /// Where the audit log is kept; none: in memory only.
    pub data_dir: Option<PathBuf>,
    /// The shop's services and the operator login there; none: no shop
    /// pages.
    pub shop: Option<ShopConfig>,
    /// How often the dashboard's time series sample the cluster
    /// (`rocketmq.config.statsSampleInterval`, default a minute).
    pub sample_interval: Duration,
}

impl ConsoleConfig {
    /// Defaults on these name servers: loopback port 8080, log-in required,
    /// no accounts yet, unsigned requests.
    pub fn new(namesrv_addrs: Vec<String>) -> ConsoleConfig {
        ConsoleConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            namesrv_addrs,
            login_required: true,
            users: Users::Fixed(Vec::new()),
            credentials: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            data_dir: None,
            shop: None,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
        }
    }

    /// Samples the dashboard's time series every `interval` (tests use a
    /// short one).
    pub fn with_sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval;
        self
    }

    /// Keeps the audit log under `dir`.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Turns the shop pages on.
    pub fn with_shop(mut self, shop: ShopConfig) -> Self {
        self.shop = Some(shop);
        self
    }

    pub fn with_users(mut self, users: Users) -> Self {
        self.users = users;
        self
    }

    pub fn with_login_required(mut self, required: bool) -> Self {
        self.login_required = required;
        self
    }

    pub fn with_credentials(mut self, credentials: impl Into<Option<Credentials>>) -> Self {
        self.credentials = credentials.into();
        self
    }

    /// Reads an `application.properties` file; `users.properties` is looked
    /// for under `rocketmq.config.dataPath`, else beside the file.
    pub fn from_file(path: &Path) -> Result<(ConsoleConfig, Vec<String>), ConfigError> {
        let text = read_bounded(path)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        Self::from_properties(&text, &path.display().to_string(), &base)
    }

    /// Parses `application.properties` text (`from` names it in errors,
    /// `base` is where relative paths and the default data path are).
    /// Returns the configuration and the keys it did not know.
    pub fn from_properties(
        text: &str,
        from: &str,
        base: &Path,
    ) -> Result<(ConsoleConfig, Vec<String>), ConfigError> {
        let entries =
            mq_protocol::properties::parse(text).map_err(|e| invalid(from, e.to_string()))?;
        let mut config = ConsoleConfig::new(Vec::new());
        let (mut address, mut port) = (config.listen.ip(), config.listen.port());
        let mut data_path = base.to_owned();
        let (mut access, mut secret) = (String::new(), String::new());
        let mut unknown = Vec::new();
        let mut shop: Vec<(String, String)> = Vec::new();
        for entry in entries {
            let value = entry.value.trim();
            let at = |what: &str| format!("{from} line {}: {what}", entry.line);
            match entry.key.as_str() {
                "server.address" => {
                    address = value
                        .parse()
                        .map_err(|_| invalid(from, at(&format!("bad server.address {value:?}"))))?;
                }
                "server.port" => {
                    port = value
                        .parse()
                        .map_err(|_| invalid(from, at(&format!("bad server.port {value:?}"))))?;
                }
                "rocketmq.config.namesrvAddr" | "rocketmq.config.namesrvAddrs" => {
                    config.namesrv_addrs = split_addrs(value);
                }
                "rocketmq.config.loginRequired" => {
                    config.login_required = parse_bool(value).ok_or_else(|| {
                        invalid(
                            from,
                            at(&format!(
                                "loginRequired must be true or false, got {value:?}"
                            )),
                        )
                    })?;
                }
                "rocketmq.config.dataPath" => {
                    let path = PathBuf::from(value);
                    data_path = if path.is_absolute() {
                        path
                    } else {
                        base.join(path)
                    };
                }
                "rocketmq.config.accessKey" => access = value.to_owned(),
                "rocketmq.config.secretKey" => secret = value.to_owned(),
                "rocketmq.config.statsSampleInterval" => {
                    config.sample_interval = parse_duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            invalid(from, at(&format!("bad sample interval {value:?}")))
                        })?;
                }
                "server.servlet.session.timeout" => {
                    config.session_timeout = parse_duration(value).ok_or_else(|| {
                        invalid(from, at(&format!("bad session timeout {value:?}")))
                    })?;
                }
                key if SHOP_KEYS.contains(&key) => {
                    shop.push((key.to_owned(), value.to_owned()));
                }
                key if key.starts_with("rocketmq.config.namesrvAddrs[") => {
                    config.namesrv_addrs.extend(split_addrs(value));
                }
                other => unknown.push(other.to_owned()),
            }
        }
        config.listen = SocketAddr::new(address, port);
        config.credentials = match (access.is_empty(), secret.is_empty()) {
            (true, true) => None,
            (false, false) => Some(Credentials::new(access, secret)),
            _ => {
                return Err(invalid(
                    from,
                    "rocketmq.config.accessKey and rocketmq.config.secretKey go together",
                ))
            }
        };
        config.users = Users::File(data_path.join(USERS_FILE));
        config.data_dir = Some(data_path);
        config.shop = shop_config(&shop, from)?;
        Ok((config, unknown))
    }

    /// The cross-field checks [`crate::serve`] makes before it listens.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.namesrv_addrs.is_empty() {
            return Err(invalid(
                "configuration",
                "no name server: give -n or rocketmq.config.namesrvAddr",
            ));
        }
        for addr in &self.namesrv_addrs {
            if addr.parse::<SocketAddr>().is_err() && !addr.contains(':') {
                return Err(invalid(
                    "configuration",
                    format!("name server {addr:?} is not host:port"),
                ));
            }
        }
        if self.session_timeout.is_zero() {
            return Err(invalid(
                "configuration",
                "the session timeout must be positive",
            ));
        }
        if self.login_required {
            let users = self.load_users()?;
            if users.is_empty() {
                return Err(invalid(
                    "configuration",
                    format!(
                        "loginRequired is on but there is no account ({}); add name=password[,1] lines or set rocketmq.config.loginRequired=false",
                        match &self.users {
                            Users::File(path) => path.display().to_string(),
                            Users::Fixed(_) => "none given".to_owned(),
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The accounts as they are now (the file read again).
    pub fn load_users(&self) -> Result<Vec<User>, ConfigError> {
        match &self.users {
            Users::Fixed(users) => Ok(users.clone()),
            Users::File(path) => {
                let text = match read_bounded(path) {
                    Ok(text) => text,
                    Err(ConfigError::Read { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        return Ok(Vec::new())
                    }
                    Err(e) => return Err(e),
                };
                parse_users(&text, &path.display().to_string())
            }
        }
    }
}

/// The shop's keys, in [`ShopConfig`]'s order.
const SHOP_KEYS: [&str; 9] = [
    "shop.orderUrl",
    "shop.goodsUrl",
    "shop.couponUrl",
    "shop.userUrl",
    "shop.payUrl",
    "shop.logUrl",
    "shop.pointsUrl",
    "shop.operatorLogin",
    "shop.operatorPassword",
];

/// The shop's configuration from its keys: none when none is given, an
/// error when some are missing or a URL is not `http(s)://`.
fn shop_config(given: &[(String, String)], from: &str) -> Result<Option<ShopConfig>, ConfigError> {
    if given.is_empty() {
        return Ok(None);
    }
    let mut values = Vec::new();
    for key in SHOP_KEYS {
        let value = given
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().trim_end_matches('/').to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                invalid(
                    from,
                    format!("{key} is missing: the shop pages need every shop.* key"),
                )
            })?;
        if key.ends_with("Url") && !(value.starts_with("http://") || value.starts_with("https://"))
        {
            return Err(invalid(
                from,
                format!("{key} must be an http:// or https:// URL, got {value:?}"),
            ));
        }
        values.push(value);
    }
    let [order_url, goods_url, coupon_url, user_url, pay_url, log_url, points_url, login, password] =
        <[String; 9]>::try_from(values).map_err(|_| invalid(from, "shop keys"))?;
    Ok(Some(ShopConfig {
        order_url,
        goods_url,
        coupon_url,
        user_url,
        pay_url,
        log_url,
        points_url,
        login,
        password,
    }))
}

/// Reads a text file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read_to_string(path).map_err(read)
}

/// `users.properties`: `name=password[,N]` per line, N 1 for an admin.
pub fn parse_users(text: &str, from: &str) -> Result<Vec<User>, ConfigError> {
    let entries = mq_protocol::properties::parse(text).map_err(|e| invalid(from, e.to_string()))?;
    let mut users: Vec<User> = Vec::new();
    for entry in entries {
        let name = entry.key.trim();
        let (password, role) = match entry.value.rsplit_once(',') {
            Some((password, role)) => (password, role.trim()),
            None => (entry.value.as_str(), "0"),
        };
        let admin = match role {
            "1" => true,
            "0" => false,
            other => {
                return Err(invalid(
                    from,
                    format!(
                        "line {}: the role of {name:?} must be 0 or 1, got {other:?}",
                        entry.line
                    ),
                ))
            }
        };
        if name.is_empty() || password.is_empty() {
            return Err(invalid(
                from,
                format!(
                    "line {}: an account needs a name and a password",
                    entry.line
                ),
            ));
        }
        users.retain(|u| u.name != name);
        users.push(User::new(name, password, admin));
    }
    Ok(users)
}

/// Addresses separated by `;` or `,`, blanks dropped.
pub fn split_addrs(value: &str) -> Vec<String> {
    value
        .split([';', ','])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Seconds, or a number with an `s`, `m` or `h` suffix.
fn parse_duration(value: &str) -> Option<Duration> {
    let (number, unit) = match value.char_indices().last()? {
        (i, 's') => (&value[..i], 1),
        (i, 'm') => (&value[..i], 60),
        (i, 'h') => (&value[..i], 3600),
        _ => (value, 1),
    };
    let n: u64 = number.trim().parse().ok()?;
    n.checked_mul(unit).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dashboards_keys() {
        let text = "server.port=9090\nrocketmq.config.namesrvAddr=127.0.0.1:9876;127.0.0.2:9876\n\
                    rocketmq.config.loginRequired=false\nrocketmq.config.accessKey=ak\n\
                    rocketmq.config.secretKey=sk\nserver.servlet.session.timeout=5m\nspring.foo=1\n\
                    rocketmq.config.statsSampleInterval=15s\n";
        let (config, unknown) =
            ConsoleConfig::from_properties(text, "app", Path::new("/etc/c")).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.namesrv_addrs, ["127.0.0.1:9876", "127.0.0.2:9876"]);
        assert!(!config.login_required);
        assert_eq!(config.credentials, Some(Credentials::new("ak", "sk")));
        assert_eq!(config.session_timeout, Duration::from_secs(300));
        assert_eq!(config.sample_interval, Duration::from_secs(15));
        assert_eq!(
            config.users,
            Users::File(PathBuf::from("/etc/c/users.properties"))
        );
        assert_eq!(unknown, ["spring.foo"]);
    }

    #[test]
    fn login_is_required_by_default_and_needs_an_account() {
        let (config, _) = ConsoleConfig::from_properties(
            "rocketmq.config.namesrvAddr=127.0.0.1:9876\n",
            "app",
            Path::new("/nonexistent-dir"),
        )
        .unwrap();
        assert!(config.login_required);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("loginRequired is on"), "{error}");
        let config = config.with_users(Users::Fixed(vec![User::new("a", "b", true)]));
        config.check().unwrap();
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "server.port=http\n",
            "rocketmq.config.loginRequired=yes\n",
            "rocketmq.config.accessKey=only\n",
            "server.servlet.session.timeout=soon\n",
            "rocketmq.config.statsSampleInterval=0s\n",
        ] {
            assert!(
                ConsoleConfig::from_properties(text, "app", Path::new(".")).is_err(),
                "{text}"
            );
        }
        let no_namesrv = ConsoleConfig::new(vec![]).with_login_required(false);
        assert!(no_namesrv.check().is_err());
    }

    #[test]
    fn the_shop_pages_need_every_shop_key_and_no_secret_is_assumed() {
        let base = "rocketmq.config.namesrvAddr=127.0.0.1:9876\n";
        let (config, unknown) =
            ConsoleConfig::from_properties(base, "app", Path::new("/d")).unwrap();
        assert_eq!(config.shop, None);
        assert_eq!(config.data_dir, Some(PathBuf::from("/d")));
        assert!(unknown.is_empty());
        let mut text = base.to_owned();
        for (key, value) in SHOP_KEYS.iter().zip([
            "http://o:1/",
            "http://g:2",
            "http://c:3",
            "http://u:4",
            "http://p:5",
            "http://l:6",
            "http://pt:7",
            "ops",
            "pw",
        ]) {
            text.push_str(&format!("{key}={value}\n"));
        }
        let (config, _) = ConsoleConfig::from_properties(&text, "app", Path::new("/d")).unwrap();
        let shop = config.shop.unwrap();
        assert_eq!(
            (shop.order_url.as_str(), shop.login.as_str()),
            ("http://o:1", "ops")
        );
        assert!(!format!("{shop:?}").contains("pw"));
        let without_password = text.replace("shop.operatorPassword=pw\n", "");
        let error =
            ConsoleConfig::from_properties(&without_password, "app", Path::new("/d")).unwrap_err();
        assert!(
            error.to_string().contains("shop.operatorPassword"),
            "{error}"
        );
        let bad_url = text.replace("http://g:2", "g:2");
        assert!(ConsoleConfig::from_properties(&bad_url, "app", Path::new("/d")).is_err());
    }

    #[test]
    fn users_file_format() {
        let users = parse_users(
            "# comment\nadmin=s3cret,1\nviewer=pw\nold=x,0\nadmin=new,1\n",
            "u",
        )
        .unwrap();
        assert_eq!(
            users,
            [
                User::new("viewer", "pw", false),
                User::new("old", "x", false),
                User::new("admin", "new", true)
            ]
        );
        assert!(parse_users("a=b,2\n", "u").is_err());
        assert!(parse_users("a=\n", "u").is_err());
        assert!(!format!("{:?}", users[0]).contains("pw"));
    }
}
