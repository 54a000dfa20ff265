"""Services: the kinds registry (``kinds``), the core every kind uses (``core``,
``answers``, ``todo``), the generic service page (``routes``), and one package per kind
(one folder each, listed in ``installed``). Importing this package imports no kind."""
