//! Exactly-once effects for message consumers.
//!
//! Each service's migrations create
//! `consumed_message(consumer_group, message_key, consumed_at)` with a primary
//! key on `(consumer_group, message_key)`. A consumer records the message in
//! the same database transaction as its effect: a redelivered message finds
//! its row, the insert changes nothing, and the consumer skips the effect.

use sqlx::AnyConnection;

/// Records that `group` consumed `message_key`. Returns `true` the first time
/// and `false` when it was already recorded; call it inside the transaction
/// that applies the effect and apply the effect only on `true`.
pub async fn record_consumption(
    conn: &mut AnyConnection,
    group: &str,
    message_key: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO consumed_message (consumer_group, message_key, consumed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer_group, message_key) DO NOTHING",
    )
    .bind(group)
    .bind(message_key)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
