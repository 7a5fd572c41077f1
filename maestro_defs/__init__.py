"""Maestro's Dagster code location (`maestro_defs.definitions:defs`)."""

from maestro_defs.definitions import defs

__all__ = ["defs"]
