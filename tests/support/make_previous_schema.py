"""How tests/data/dagster-1.13.26-postgres.sql was made (run with the PREVIOUS Dagster, not this
project's venv): a Dagster 1.13.26 instance on an empty PostgreSQL database, one run stored, then
`pg_dump`. tests/test_e2e_migrate.py loads it and migrates it with the pinned Dagster.

    python3 -m venv /tmp/dagster-prev
    /tmp/dagster-prev/bin/pip install dagster==1.13.26 dagster-postgres==0.29.26 'sqlalchemy<2.1'
    createdb -h 127.0.0.1 -U postgres maestro_prev
    /tmp/dagster-prev/bin/python tests/support/make_previous_schema.py \\
        postgresql://postgres@127.0.0.1:5432/maestro_prev
    pg_dump -h 127.0.0.1 -U postgres --no-owner --no-privileges maestro_prev \\
        > tests/data/dagster-1.13.26-postgres.sql
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import dagster as dg


@dg.op
def hello() -> str:
    return "from dagster " + dg.__version__


@dg.job(tags={"maestro/tenant": "default"})
def previous_version_job() -> None:
    hello()


def main(url: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text(
            f"storage:\n  postgres:\n    postgres_url: {url}\ntelemetry:\n  enabled: false\n"
        )
        with dg.DagsterInstance.from_config(home) as instance:
            result = previous_version_job.execute_in_process(instance=instance)
            assert result.success
            print(dg.__version__, result.run_id)


if __name__ == "__main__":
    main(sys.argv[1])
