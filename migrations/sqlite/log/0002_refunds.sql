-- Issue 15 part 7: a payment for a cancelled order is refunded (PAY_REFUND)
-- and the payment log records the refund. payment_log gets an event
-- ('paid' for PAY_SUCCESS, 'refunded' for PAY_REFUND), unique per payment
-- and event, with the time of each and the refund's reason. SQLite cannot
-- change a table's constraints, so the table is rebuilt.
CREATE TABLE payment_log_new (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('paid', 'refunded')),
    order_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    trade_no TEXT NOT NULL,
    paid_at BIGINT,
    refunded_at BIGINT,
    reason TEXT,
    logged_at BIGINT NOT NULL,
    UNIQUE (payment_id, event),
    CHECK ((event = 'paid') = (paid_at IS NOT NULL)),
    CHECK ((event = 'refunded') = (refunded_at IS NOT NULL))
);

INSERT INTO payment_log_new
    (id, payment_id, event, order_id, user_id, amount_cents, trade_no, paid_at, logged_at)
SELECT id, payment_id, 'paid', order_id, user_id, amount_cents, trade_no, paid_at, logged_at
FROM payment_log;

DROP TABLE payment_log;
ALTER TABLE payment_log_new RENAME TO payment_log;
CREATE INDEX payment_log_order ON payment_log (order_id);
