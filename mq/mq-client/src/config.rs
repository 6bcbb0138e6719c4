//! Settings shared by every producer and consumer of one client instance.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::credentials::Credentials;
use crate::error::{ClientError, Result};
use crate::in_process::InProcess;

/// Settings of a client instance (RocketMQ's `ClientConfig`). Producers and
/// consumers built with equal [`ClientConfig::client_id`]s share one
/// instance: one set of connections, one route cache, one heartbeat.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name server addresses separated by `;`. Empty means the
    /// `NAMESRV_ADDR` environment variable.
    pub namesrv_addr: String,
    /// This client's IP as brokers will see it in the client id.
    pub client_ip: String,
    /// Distinguishes several instances in one process; default the pid.
    pub instance_name: String,
    /// How often routes are fetched again from the name server (30 s).
    pub poll_name_server_interval: Duration,
    /// How often every broker of every route gets a heartbeat (30 s).
    pub heartbeat_broker_interval: Duration,
    /// How often consumers write their offsets to the brokers (5 s).
    pub persist_consumer_offset_interval: Duration,
    /// Timeout of ordinary requests (3 s).
    pub request_timeout: Duration,
    /// The account every request to a broker or name server is signed
    /// with (brokers with `aclEnable=true`); none sends unsigned. Clients
    /// of one client id share one instance, so give clients with other
    /// keys another instance name.
    pub credentials: Option<Credentials>,
    /// A broker in this process whose address skips the connection for
    /// the requests it serves (the broker's own 5.x endpoint); none by
    /// default.
    pub in_process: Option<InProcess>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addr: String::new(),
            client_ip: local_ip().to_string(),
            instance_name: std::process::id().to_string(),
            poll_name_server_interval: Duration::from_secs(30),
            heartbeat_broker_interval: Duration::from_secs(30),
            persist_consumer_offset_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(3),
            credentials: None,
            in_process: None,
        }
    }
}

impl ClientConfig {
    /// Default settings talking to the name servers `namesrv_addr`.
    pub fn new(namesrv_addr: impl Into<String>) -> Self {
        ClientConfig {
            namesrv_addr: namesrv_addr.into(),
            ..ClientConfig::default()
        }
    }

    /// The same settings under another instance name.
    pub fn with_instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance_name = name.into();
        self
    }

    /// The same settings signing every request with `credentials`.
    pub fn with_credentials(mut self, credentials: impl Into<Option<Credentials>>) -> Self {
        self.credentials = credentials.into();
        self
    }

    /// The same settings with `in_process` serving its address's
    /// requests without a connection.
    pub fn with_in_process(mut self, in_process: impl Into<Option<InProcess>>) -> Self {
        self.in_process = in_process.into();
        self
    }

    /// `ip@instance`, how brokers and other group members know this client.
    pub fn client_id(&self) -> String {
        format!("{}@{}", self.client_ip, self.instance_name)
    }

    /// The name server addresses, from the setting or `NAMESRV_ADDR`.
    pub fn namesrv_addrs(&self) -> Result<Vec<String>> {
        let raw = if self.namesrv_addr.trim().is_empty() {
            std::env::var("NAMESRV_ADDR").unwrap_or_default()
        } else {
            self.namesrv_addr.clone()
        };
        let addrs: Vec<String> = raw
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if addrs.is_empty() {
            Err(ClientError::NoNameServer)
        } else {
            Ok(addrs)
        }
    }
}

/// This host's first non-loopback IPv4 address as its own host name
/// resolves (normally from `/etc/hosts`), else loopback. Only used to make
/// the client id readable; nothing is sent anywhere to find it.
pub fn local_ip() -> Ipv4Addr {
    use std::net::ToSocketAddrs;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    host.and_then(|h| (h.as_str(), 0).to_socket_addrs().ok())
        .into_iter()
        .flatten()
        .find_map(|addr| match addr.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namesrv_list_and_client_id() {
        let config = ClientConfig::new(" 10.0.0.1:9876; 10.0.0.2:9876;").with_instance_name("a");
        assert_eq!(
            config.namesrv_addrs().unwrap(),
            vec!["10.0.0.1:9876", "10.0.0.2:9876"]
        );
        assert_eq!(config.client_id(), format!("{}@a", config.client_ip));
    }
}
