//! Configuration layering with real environment variables. This file holds
//! one test so that it owns its process's environment.

use shop_common::service::{Plain, Service, ServiceConfig};

static SCHEMA: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite/goods");
static GOODS: Service = Service {
    name: "goods",
    about: "goods",
    env_prefix: "GOODS",
    default_port: 8082,
    migrations: Some(shop_common::Migrations {
        sqlite: &SCHEMA,
        postgres: &SCHEMA,
    }),
    extension: Plain {
        router: |_, _| axum::Router::new(),
        subscriptions: Vec::new,
    },
};

fn load(file: Option<&std::path::Path>) -> ServiceConfig {
    GOODS.config(&GOODS.settings(file).unwrap()).unwrap()
}

#[test]
fn environment_overrides_the_file_and_the_prefixed_variable_overrides_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goods.properties");
    std::fs::write(
        &file,
        "http_addr=127.0.0.1:9100\ndatabase_url=sqlite://from-file.db\n",
    )
    .unwrap();

    std::env::remove_var("GOODS_DATABASE_URL");
    std::env::remove_var("GOODS_HTTP_ADDR");
    // The one key without a default, from the environment as operators set it.
    std::env::set_var("GOODS_SERVICE_SECRET", "0123456789abcdef0123");
    std::env::set_var("DATABASE_URL", "postgres://plain@db/shop");
    let config = load(Some(&file));
    assert_eq!(
        config.database_url, "postgres://plain@db/shop",
        "DATABASE_URL beats the file"
    );
    assert_eq!(config.http_addr.port(), 9100);

    std::env::set_var("GOODS_DATABASE_URL", "postgres://prefixed@db/goods");
    std::env::set_var("GOODS_HTTP_ADDR", "127.0.0.1:9200");
    let config = load(Some(&file));
    assert_eq!(
        config.database_url, "postgres://prefixed@db/goods",
        "GOODS_DATABASE_URL beats DATABASE_URL"
    );
    assert_eq!(config.http_addr.port(), 9200);

    std::env::remove_var("DATABASE_URL");
    std::env::remove_var("GOODS_DATABASE_URL");
    std::env::remove_var("GOODS_HTTP_ADDR");
    let config = load(None);
    assert_eq!(config.database_url, "sqlite://data/goods.db");
    assert_eq!(config.http_addr.port(), 8082);

    let missing = GOODS
        .settings(Some(&dir.path().join("nope.properties")))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.properties"), "{missing}");
}
