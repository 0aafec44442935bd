"""The serving stage's migration branch (``serving``): deployment records."""
