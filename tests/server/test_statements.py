"""Statements built from parts: each part's values take the next placeholders, whatever the parts before it took."""

from __future__ import annotations

import asyncpg

from server import audit
from server.statements import Params


def test_each_value_takes_the_next_placeholder() -> None:
    params = Params()
    assert params.add("a") == "$1"
    assert params.add_all(["b", None, 3]) == "$2, $3, $4"
    assert params.add_all([]) == ""
    assert params.add({"x": 1}) == "$5"
    assert params.values == ["a", "b", None, 3, {"x": 1}]


async def test_parts_built_in_any_order_read_back_their_own_values(con: asyncpg.Connection) -> None:
    params = Params()
    first = f"SELECT {params.add('first')}::text AS v"
    entry = audit.Entry(audit.CLI, "test.statement", "thing:1", {"n": 7})
    audited = entry.cte(params)
    second = f"SELECT {params.add(2)}::int AS n"
    row = await con.fetchrow(f"WITH {audited}, a AS ({first}), b AS ({second}) SELECT a.v, b.n FROM a, b", *params.values)
    assert (row["v"], row["n"]) == ("first", 2)
    logged = await con.fetchrow("SELECT username, action, object, detail FROM audit_log WHERE action = 'test.statement'")
    assert tuple(logged) == ("cli", "test.statement", "thing:1", {"n": 7})


async def test_two_audit_entries_go_in_one_statement(con: asyncpg.Connection) -> None:
    params = Params()
    entries = [audit.Entry(audit.CLI, "test.twice", f"thing:{n}") for n in range(2)]
    await con.execute(f"WITH {', '.join(entry.cte(params) for entry in entries)} SELECT", *params.values)
    assert [r["object"] for r in await con.fetch("SELECT object FROM audit_log WHERE action = 'test.twice' ORDER BY object")] == [
        "thing:0", "thing:1"]
