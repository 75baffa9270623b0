"""Shapes as index arithmetic: symbolic index expressions, views (shape, strides, offset,
mask) and shape trackers (a stack of views), so movement ops cost no copies."""
