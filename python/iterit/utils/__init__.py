"""Small utilities with no knowledge of the method: atomic writes."""
