"""Dagster resources and the step plugins they wrap."""
