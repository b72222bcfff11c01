-- Console listings: a brand's templates, campaigns and journeys, newest first (keyset paged).
CREATE INDEX templates_by_brand_created ON templates (brand_id, created_at DESC, template_id DESC);
CREATE INDEX campaigns_by_brand_created ON campaigns (brand_id, created_at DESC, campaign_id DESC);
CREATE INDEX journeys_by_brand_created ON journeys (brand_id, created_at DESC, journey_id DESC);
