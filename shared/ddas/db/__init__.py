"""PostgreSQL access for the services: connections and pools from settings, in the settings'
schema (search_path), and the migrations that bring that schema up to date (ddas.db.migrate)."""

from __future__ import annotations

import asyncpg

from ddas.settings import DatabaseSettings


async def connect(settings: DatabaseSettings | None = None) -> asyncpg.Connection:
    """One connection whose search_path is the settings' schema."""
    return await asyncpg.connect(**(settings or DatabaseSettings()).to_asyncpg_params())


async def create_pool(settings: DatabaseSettings | None = None) -> asyncpg.Pool:
    """A pool whose connections all use the settings' schema."""
    settings = settings or DatabaseSettings()
    pool = await asyncpg.create_pool(
        **settings.to_asyncpg_params(),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
    )
    assert pool is not None
    return pool


async def database_ready(pool: asyncpg.Pool | None, timeout: float = 2.0) -> bool:
    """Readiness: a pool exists and answers a query within `timeout` seconds."""
    if pool is None:
        return False
    async with pool.acquire(timeout=timeout) as conn:
        return bool(await conn.fetchval("SELECT true", timeout=timeout))
