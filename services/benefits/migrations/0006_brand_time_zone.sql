-- The brand's time zone is membership's (set when the brand is created, event BrandCreated):
-- benefits keeps it on the points policy as a projection, and an operator cannot set another.
-- false: a zone set before the brand's arrived (replaced when it does).
ALTER TABLE points_policies ADD COLUMN time_zone_from_brand boolean NOT NULL DEFAULT false;
