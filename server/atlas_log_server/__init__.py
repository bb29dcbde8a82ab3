"""Atlas Log server."""
