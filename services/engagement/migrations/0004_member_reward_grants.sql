-- A member reads their own rewards (storefront): newest first, by brand and account.
CREATE INDEX reward_grants_member ON reward_grants (brand_id, account_id, created_at DESC, grant_id DESC);
