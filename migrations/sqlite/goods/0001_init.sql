-- The goods service: catalogue, stock, and the stock ledger that makes
-- reservations and their compensation idempotent per order.

-- Messages this service's consumers applied (shop_common::idempotency).
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

CREATE TABLE goods (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) > 0),
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock BIGINT NOT NULL CHECK (stock >= 0),
    created_at BIGINT NOT NULL
);

-- One row per (order, operation): 'reserve' when the order took stock,
-- 'cancel' when the order was cancelled here. A cancel row's goods_id and
-- quantity say what was put back (NULL and 0 when the order had reserved
-- nothing). The primary key is what makes both operations happen once.
CREATE TABLE stock_ledger (
    order_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('reserve', 'cancel')),
    goods_id BIGINT,
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, operation),
    CHECK (operation = 'cancel' OR (goods_id IS NOT NULL AND quantity > 0))
);

CREATE INDEX stock_ledger_goods ON stock_ledger (goods_id);
