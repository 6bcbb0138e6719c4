-- The pay service: one payment per order, UNPAID until the gateway's
-- signed callback marks it PAID in the local transaction of the PAY_SUCCESS
-- half message.

-- Messages this service's consumers applied (shop_common::idempotency);
-- the pay service consumes nothing today, the table keeps every service's
-- schema alike.
CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

-- amount_cents is what the order had to pay when the payment was created.
-- pay_msg_id is the unique id of the PAY_SUCCESS half message whose local
-- transaction marked the payment PAID: the check-back commits that message
-- and rolls back any other (a replayed callback's).
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('UNPAID', 'PAID')),
    trade_no TEXT,
    pay_msg_id TEXT,
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    CHECK (status = 'UNPAID' OR (trade_no IS NOT NULL AND paid_at IS NOT NULL))
);

CREATE INDEX payments_user ON payments (user_id);
