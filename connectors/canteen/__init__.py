"""Canteen connector types: the territory's standard school-canteen API."""
