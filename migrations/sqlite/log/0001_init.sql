-- The log service: one row per payment (PAY_SUCCESS) and per order event
-- (ORDER_CANCEL), each written once.

-- Messages this service's consumers applied (shop_common::idempotency).
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

-- The unique payment id is the second guard (after consumed_message)
-- against logging a payment twice.
CREATE TABLE payment_log (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    trade_no TEXT NOT NULL,
    paid_at BIGINT NOT NULL,
    logged_at BIGINT NOT NULL
);

CREATE INDEX payment_log_order ON payment_log (order_id);

-- event is what happened to the order ('cancelled' for ORDER_CANCEL).
CREATE TABLE order_log (
    id INTEGER PRIMARY KEY,
    order_id TEXT NOT NULL,
    event TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    logged_at BIGINT NOT NULL,
    UNIQUE (order_id, event)
);
