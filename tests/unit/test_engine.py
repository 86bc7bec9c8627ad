"""The engine's configuration behind a transaction pooler (no database needed: nothing
connects until a statement runs)."""

from __future__ import annotations

from app.store.engine import POOLED, autocommitting, create_engine


async def test_behind_a_pooler_single_statements_still_run_in_a_transaction() -> None:
    direct = create_engine("postgresql://u@127.0.0.1:5432/db")
    pooled = create_engine("postgresql://u@127.0.0.1:6432/db", pooled=True)
    try:
        assert autocommitting(direct).get_execution_options()["isolation_level"] == "AUTOCOMMIT"
        assert autocommitting(pooled) is pooled
        assert pooled.get_execution_options()[POOLED] is True
        assert "isolation_level" not in autocommitting(pooled).get_execution_options()
    finally:
        await direct.dispose()
        await pooled.dispose()
