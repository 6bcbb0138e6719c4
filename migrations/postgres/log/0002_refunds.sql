-- Issue 15 part 7: a payment for a cancelled order is refunded (PAY_REFUND)
-- and the payment log records the refund. payment_log gets an event
-- ('paid' for PAY_SUCCESS, 'refunded' for PAY_REFUND), unique per payment
-- and event, with the time of each and the refund's reason.
ALTER TABLE payment_log ADD COLUMN event TEXT NOT NULL DEFAULT 'paid'
    CHECK (event IN ('paid', 'refunded'));
ALTER TABLE payment_log ALTER COLUMN event DROP DEFAULT;
ALTER TABLE payment_log ALTER COLUMN paid_at DROP NOT NULL;
ALTER TABLE payment_log ADD COLUMN refunded_at BIGINT;
ALTER TABLE payment_log ADD COLUMN reason TEXT;
ALTER TABLE payment_log DROP CONSTRAINT payment_log_payment_id_key;
ALTER TABLE payment_log ADD CONSTRAINT payment_log_payment_event UNIQUE (payment_id, event);
ALTER TABLE payment_log ADD CONSTRAINT payment_log_event_time CHECK (
    ((event = 'paid') = (paid_at IS NOT NULL))
    AND ((event = 'refunded') = (refunded_at IS NOT NULL))
);
