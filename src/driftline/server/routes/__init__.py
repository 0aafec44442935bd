"""REST routes of the versioned API (``/api/v1``), one module per stage."""
