-- The user service: users and their balance, and the money ledger that
-- makes balance reservations and their refund idempotent per order.

-- Messages this service's consumers applied (shop_common::idempotency).
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) > 0),
    balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0),
    created_at BIGINT NOT NULL
);

-- One row per (order, operation): 'reserve' when the order took money from
-- a balance, 'cancel' when the order was cancelled here. A cancel row's
-- user_id and amount_cents say what was refunded (NULL and 0 when the order
-- had reserved nothing). The primary key is what makes both operations
-- happen once.
CREATE TABLE money_ledger (
    order_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('reserve', 'cancel')),
    user_id BIGINT,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, operation),
    CHECK (operation = 'cancel' OR (user_id IS NOT NULL AND amount_cents > 0))
);

CREATE INDEX money_ledger_user ON money_ledger (user_id);
