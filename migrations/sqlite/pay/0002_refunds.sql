-- A payment for an order that is CANCELLED when the gateway's notification
-- arrives is refunded, not booked (issue 15 part 7): status REFUNDED, with
-- the trade number and time of the notification (paid_at) and the time of
-- the refund. SQLite cannot change a CHECK constraint: the table is
-- rebuilt with the new one.
CREATE TABLE payments_new (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('UNPAID', 'PAID', 'REFUNDED')),
    trade_no TEXT,
    pay_msg_id TEXT,
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    refunded_at BIGINT,
    CHECK (status = 'UNPAID' OR (trade_no IS NOT NULL AND paid_at IS NOT NULL)),
    CHECK (status <> 'REFUNDED' OR refunded_at IS NOT NULL)
);
INSERT INTO payments_new (id, order_id, user_id, amount_cents, status, trade_no, pay_msg_id, created_at, paid_at)
    SELECT id, order_id, user_id, amount_cents, status, trade_no, pay_msg_id, created_at, paid_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_user ON payments (user_id);
