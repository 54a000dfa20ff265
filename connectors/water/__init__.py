"""Water supply connector types."""
