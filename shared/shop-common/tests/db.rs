//! The shared database layer against real SQLite files and a real PostgreSQL.

use shop_common::idempotency::record_consumption;
use shop_common::money::{from_cents, to_cents};
use shop_common::{Db, Migrations};
use sqlx::Row;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations/postgres");
const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

shop_common::db_test!(async fn migrations_run_and_are_idempotent(db) {
    let first = Db::connect_and_migrate(&db.url, 4, MIGRATIONS).await.unwrap();
    assert_eq!(first.kind(), db.kind);
    first.close().await;
    // A second start runs nothing new and keeps the schema.
    let again = Db::connect_and_migrate(&db.url, 4, MIGRATIONS).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM account").fetch_one(again.pool()).await.unwrap();
    assert_eq!(n, 0);
});

shop_common::db_test!(async fn a_message_is_consumed_once_with_its_effect(db) {
    let db = Db::connect_and_migrate(&db.url, 4, MIGRATIONS).await.unwrap();
    sqlx::query("INSERT INTO account (id, balance_cents) VALUES ($1, $2)")
        .bind("u1")
        .bind(to_cents("10.00".parse().unwrap()).unwrap())
        .execute(db.pool())
        .await
        .unwrap();
    for _delivery in 0..3 {
        let mut tx = db.pool().begin().await.unwrap();
        if record_consumption(&mut tx, "points-group", "msg-1", 1).await.unwrap() {
            sqlx::query("UPDATE account SET balance_cents = balance_cents + $1 WHERE id = $2")
                .bind(250_i64)
                .bind("u1")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // Another group consumes the same message independently.
    let mut conn = db.pool().acquire().await.unwrap();
    assert!(record_consumption(&mut conn, "log-group", "msg-1", 2).await.unwrap());
    let row = sqlx::query("SELECT balance_cents FROM account WHERE id = $1").bind("u1").fetch_one(db.pool()).await.unwrap();
    assert_eq!(from_cents(row.get::<i64, _>(0)), "12.50".parse().unwrap());
});

shop_common::db_test!(async fn a_rolled_back_effect_leaves_the_message_unconsumed(db) {
    let db = Db::connect_and_migrate(&db.url, 4, MIGRATIONS).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    assert!(record_consumption(&mut tx, "g", "m", 1).await.unwrap());
    // The effect fails (a CHECK constraint), so the whole transaction is dropped.
    let failed = sqlx::query("INSERT INTO account (id, balance_cents) VALUES ($1, $2)").bind("u").bind(-1_i64).execute(&mut *tx).await;
    assert!(failed.is_err());
    drop(tx);
    let mut conn = db.pool().acquire().await.unwrap();
    assert!(record_consumption(&mut conn, "g", "m", 2).await.unwrap(), "redelivery must be applied");
});

#[tokio::test]
async fn unreachable_database_is_a_clear_error() {
    let err = Db::connect("postgres://nobody:pw@127.0.0.1:1/none", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot connect") && err.contains("nobody:***@127.0.0.1:1"),
        "{err}"
    );
}
