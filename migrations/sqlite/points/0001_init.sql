-- The points service: a ledger with one credit per payment (and per
-- order), and each user's balance, changed in the same transaction.

-- Messages this service's consumers applied (shop_common::idempotency).
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

CREATE TABLE points_ledger (
    payment_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    points BIGINT NOT NULL CHECK (points >= 0),
    credited_at BIGINT NOT NULL
);

CREATE INDEX points_ledger_user ON points_ledger (user_id);

-- Invariant: points = SUM(points_ledger.points) of the user.
CREATE TABLE user_points (
    user_id BIGINT PRIMARY KEY,
    points BIGINT NOT NULL CHECK (points >= 0),
    updated_at BIGINT NOT NULL
);
