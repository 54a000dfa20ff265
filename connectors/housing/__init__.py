"""Social-housing connector types: the territory's standard housing-application API."""
