"""The private Dagster APIs Maestro uses are pinned with the Dagster set."""

from __future__ import annotations

from importlib.metadata import version

from resources import dagster_private


def test_the_installed_dagster_is_the_one_the_private_apis_were_checked_against() -> None:
    """Fails on any Dagster upgrade: re-check every import in dagster_private.py, then move
    PINNED_DAGSTER_VERSION (and the pins in pyproject.toml) together."""
    assert version("dagster") == dagster_private.PINNED_DAGSTER_VERSION


def test_every_private_name_is_there() -> None:
    for name in dagster_private.__all__:
        assert getattr(dagster_private, name) is not None, name


def test_the_private_attributes_the_executor_reads_are_there() -> None:
    """The helpers in dagster_private.py read or set three private attributes, which each
    class sets in its constructor; a Dagster that renames one fails here, not in a run."""
    for cls, attribute in (
        (dagster_private.InstanceConcurrencyContext, "_pending_timeouts"),
        (dagster_private.ActiveExecution, "_waiting_to_retry"),
        (dagster_private.PlanExecutionContext, "_event_loop"),
    ):
        assert attribute in cls.__init__.__code__.co_names, (cls.__name__, attribute)
