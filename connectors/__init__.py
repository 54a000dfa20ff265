"""Connectors to the territory's service back-ends: pure Python, no Flask.

Filled in by the connectors feature; importable now so the layout is stable.
"""
