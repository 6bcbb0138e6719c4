-- The payment that paid an order: the pay service settles a payment with
-- the order service (POST /internal/orders/{id}/payments), which marks a
-- CONFIRMED order PAID and keeps the payment's id here, in one conditional
-- statement, or answers that the order is cancelled (the payment is then
-- refunded). A repeated settlement of the same payment is answered as the
-- first; another payment for a PAID order is refused.
ALTER TABLE orders ADD COLUMN payment_id TEXT;
