"""Resampling statistics shared by every asset that puts an interval on a number (no Dagster imports)."""
