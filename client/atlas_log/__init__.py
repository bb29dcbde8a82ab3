"""Atlas Log client."""
