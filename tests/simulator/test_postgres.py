"""The private PostgreSQL: its own cluster on a unix socket in a temp dir,
no TCP, gone afterwards (never the machine's shared server)."""

from __future__ import annotations

import asyncio

import asyncpg

from lawhub_actors.simulator.postgres import run_postgres


async def _query(pg_host: str, sql: str) -> object:
    conn = await asyncpg.connect(host=pg_host, user="lawhub", database="postgres")
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_a_private_cluster_answers_on_its_own_socket_only_and_is_gone_afterwards() -> None:
    with run_postgres({"fsync": "off"}) as pg:
        host = str(pg.socket_dir)
        assert (pg.socket_dir / ".s.PGSQL.5432").is_socket()
        assert asyncio.run(_query(host, "SHOW listen_addresses")) == ""
        assert asyncio.run(_query(host, "SHOW fsync")) == "off"
        assert asyncio.run(_query(host, "SHOW synchronous_commit")) == "on"
        assert pg.dsn() == f"host={host} user=lawhub dbname=postgres"
    assert not pg.socket_dir.exists()


def test_two_private_clusters_run_side_by_side() -> None:
    with run_postgres() as first, run_postgres() as second:
        assert first.socket_dir != second.socket_dir
        asyncio.run(_query(str(first.socket_dir), "CREATE TABLE only_here (x int)"))
        assert asyncio.run(_query(
            str(second.socket_dir), "SELECT to_regclass('only_here') IS NULL")) is True
