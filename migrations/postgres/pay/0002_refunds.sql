-- A payment for an order that is CANCELLED when the gateway's notification
-- arrives is refunded, not booked (issue 15 part 7): status REFUNDED, with
-- the trade number and time of the notification (paid_at) and the time of
-- the refund.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('UNPAID', 'PAID', 'REFUNDED'));
ALTER TABLE payments ADD COLUMN refunded_at BIGINT;
ALTER TABLE payments ADD CONSTRAINT payments_refunded_check
    CHECK (status <> 'REFUNDED' OR refunded_at IS NOT NULL);
