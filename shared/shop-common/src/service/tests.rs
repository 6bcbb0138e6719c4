//! The frame's configuration: defaults, files, the keys without defaults.

use super::*;

fn service() -> &'static Service {
    // Any real schema will do: these tests never open a database.
    static SCHEMA: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/log");
    static SERVICE: Service = Service {
        name: "things",
        about: "A test service",
        env_prefix: "THINGS_SERVICE_TEST",
        default_port: 8099,
        migrations: Some(Migrations {
            sqlite: &SCHEMA,
            postgres: &SCHEMA,
        }),
        extension: Plain {
            router: |_, _| Router::new(),
            subscriptions: Vec::new,
        },
    };
    &SERVICE
}

/// The defaults with the one key that has none.
fn settings() -> Settings {
    let mut settings = service().settings(None).unwrap();
    settings.set("service_secret", "0123456789abcdef0123");
    settings
}

#[test]
fn a_service_without_its_secret_does_not_start_and_none_is_shown() {
    let err = service()
        .config(&service().settings(None).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("service_secret") && err.contains("must be set"),
        "{err}"
    );
    let mut settings = settings();
    settings.set("service_secret", "short");
    let err = service().config(&settings).unwrap_err().to_string();
    assert!(
        err.contains("service_secret") && !err.contains("short"),
        "{err}"
    );
    let mut settings = self::settings();
    settings.set("trusted_services", "order:0123456789abcdef9999");
    let config = service().config(&settings).unwrap();
    assert_eq!(config.service_key.as_ref().unwrap().name(), "things");
    assert!(config.trusted.get("order").is_some());
    let shown = format!("{config:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
}

#[test]
fn defaults_follow_the_service_then_the_file_overrides() {
    let defaults = service().config(&settings()).unwrap();
    assert_eq!(defaults.http_addr, "127.0.0.1:8099".parse().unwrap());
    assert_eq!(defaults.database_url, "sqlite://data/things.db");
    assert_eq!(defaults.namesrv_addr, "127.0.0.1:9876");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("things.properties");
    std::fs::write(
        &path,
        "http_addr=0.0.0.0:9000\nmax_connections=3\nnamesrv_addr=\n\
         service_secret=0123456789abcdef0123\ntrusted_services=order:fedcba9876543210fedc\n",
    )
    .unwrap();
    let config = service()
        .config(&service().settings(Some(&path)).unwrap())
        .unwrap();
    assert_eq!(config.http_addr, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.max_connections, 3);
    assert_eq!(config.namesrv_addr, "");
    assert!(config.trusted.get("order").is_some());
}

#[test]
fn bad_values_name_their_key() {
    let mut settings = settings();
    settings.set("http_addr", "localhost");
    let err = service().config(&settings).unwrap_err().to_string();
    assert!(err.contains("http_addr"), "{err}");
    settings.set("http_addr", "127.0.0.1:1");
    settings.set("max_connections", "0");
    let err = service().config(&settings).unwrap_err().to_string();
    assert!(err.contains("max_connections"), "{err}");
}

#[test]
fn the_broker_account_is_both_keys_or_none() {
    let mut settings = settings();
    assert!(service()
        .config(&settings)
        .unwrap()
        .mq_credentials
        .is_none());
    settings.set("mq_secret_key", "s3cret");
    let err = service().config(&settings).unwrap_err().to_string();
    assert!(
        err.contains("mq_access_key") && !err.contains("s3cret"),
        "{err}"
    );
    settings.set("mq_access_key", "shop-order");
    let config = service().config(&settings).unwrap();
    assert_eq!(
        config.mq_credentials,
        Some(mq_client::Credentials::new("shop-order", "s3cret"))
    );
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn a_service_without_a_database_reads_only_the_http_keys_of_the_base_keys() {
    static BARE: Service = Service {
        name: "bare",
        about: "No database",
        env_prefix: "BARE_SERVICE_TEST",
        default_port: 8098,
        migrations: None,
        extension: Plain {
            router: |_, _| Router::new(),
            subscriptions: Vec::new,
        },
    };
    assert_eq!(BARE.keys(), HTTP_KEYS);
    assert!(HTTP_KEYS
        .iter()
        .all(|key| key.starts_with("http_") || *key == "metrics_addr"));
    assert_eq!(BARE.defaults().get("metrics_addr"), Some(""));
    assert_eq!(BARE.defaults().get("http_max_in_flight"), Some("256"));
    assert_eq!(BARE.defaults().get("database_url"), None);
    let config = BARE.config(&BARE.defaults()).unwrap();
    assert_eq!(config.http_addr.port(), 8098);
    assert_eq!(service().keys(), KEYS);
}

#[test]
fn metrics_are_off_by_default_and_a_bad_address_names_its_key() {
    assert_eq!(service().config(&settings()).unwrap().metrics_addr, None);
    let mut settings = settings();
    settings.set("metrics_addr", "127.0.0.1:5557");
    let config = service().config(&settings).unwrap();
    assert_eq!(config.metrics_addr, Some("127.0.0.1:5557".parse().unwrap()));
    settings.set("metrics_addr", "localhost:metrics");
    let err = service().config(&settings).unwrap_err().to_string();
    assert!(err.contains("metrics_addr"), "{err}");
}
