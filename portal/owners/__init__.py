"""The service owners' pages, their statistics API and the territory's open data.

Everything here reads the daily roll-ups (``portal.models.measure``) through
``portal.owners.indicators``, never the raw events. Who sees what: a service owner the
instances named on their role, a territory administrator every instance; nobody else
(``portal.owners.access``).
"""
