"""Statistics defined once, and the analysts' polars client."""
