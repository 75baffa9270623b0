"""Device-independent lowering machinery: symbolic index expressions, views and shape trackers."""
