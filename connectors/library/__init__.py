"""Library connector types: the territory's standard library API, and Koha."""
