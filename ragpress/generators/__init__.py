"""Generators: ``Context -> Answer``."""
