"""Throwaway databases on the local PostgreSQL server, for the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

POSTGRES_DSN = os.environ.get("MAESTRO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextlib.contextmanager
def fresh_database(prefix: str = "maestro_test") -> Iterator[str]:
    """A new database on the local PostgreSQL server (its URL), dropped afterwards with every
    connection still open to it."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES_DSN}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_DSN}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
