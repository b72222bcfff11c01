-- The idempotency key a coupon was issued under (an ISV's businessId, a draw id), for audit.
ALTER TABLE coupons ADD COLUMN request_id text NOT NULL DEFAULT '';
