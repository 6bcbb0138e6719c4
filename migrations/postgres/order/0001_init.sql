-- The order service: orders and the messages its consumers applied.

CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

-- One row per order. Amounts are whole cents. PENDING orders are in the
-- middle of their saga and invisible to users; CONFIRMED orders hold their
-- stock, coupon and balance; CANCELLED orders hold nothing; PAID orders were
-- confirmed and paid.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    goods_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    goods_amount_cents BIGINT NOT NULL CHECK (goods_amount_cents >= 0),
    shipping_fee_cents BIGINT NOT NULL CHECK (shipping_fee_cents >= 0),
    coupon_id BIGINT,
    coupon_discount_cents BIGINT NOT NULL CHECK (coupon_discount_cents >= 0),
    balance_used_cents BIGINT NOT NULL CHECK (balance_used_cents >= 0),
    amount_to_pay_cents BIGINT NOT NULL CHECK (amount_to_pay_cents >= 0),
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'PAID')),
    cancel_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX orders_user ON orders (user_id, created_at);
CREATE INDEX orders_status ON orders (status, created_at);
