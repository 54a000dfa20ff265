"""The kinds of service this portal serves: one line each (see ``portal.services.kinds``)."""

KINDS = (
    "portal.services.library",
    "portal.services.canteen",
    "portal.services.housing",
    "portal.services.water",
)
