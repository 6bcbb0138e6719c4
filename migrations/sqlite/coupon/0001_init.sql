-- The coupon service: coupons per user, and the coupon ledger that makes
-- using a coupon for an order and its compensation idempotent per order.

-- Messages this service's consumers applied (shop_common::idempotency).
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

-- A coupon is 'unused' (no order) or 'used' by exactly one order.
CREATE TABLE coupon (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL CHECK (user_id > 0),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('unused', 'used')),
    order_id TEXT UNIQUE,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    CHECK ((status = 'unused' AND order_id IS NULL AND used_at IS NULL)
        OR (status = 'used' AND order_id IS NOT NULL AND used_at IS NOT NULL))
);

CREATE INDEX coupon_user ON coupon (user_id, id);

-- One row per (order, operation): 'use' when the order took a coupon,
-- 'cancel' when the order was cancelled here. A cancel row's coupon_id is
-- the coupon it released (NULL when the order had used none). The primary
-- key is what makes both operations happen once.
CREATE TABLE coupon_ledger (
    order_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('use', 'cancel')),
    coupon_id BIGINT,
    user_id BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, operation),
    CHECK (operation = 'cancel' OR (coupon_id IS NOT NULL AND user_id IS NOT NULL))
);
