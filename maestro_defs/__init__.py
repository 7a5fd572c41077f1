"""Maestro's Dagster code location: `maestro_defs.definitions:defs` (a dg project)."""
