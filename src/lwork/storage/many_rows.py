"""A hot statement run for many rows at once, compiled once per dialect and handed its rows as
the driver takes them.

``Connection.execute(statement, rows)`` builds every row's parameters anew (SQLAlchemy's
``construct_params``, then its type processors, for each row): for a batch of settled payment
notifications, whose four ``executemany`` write a row each per notification, that was about a
third of the SQLite thread's CPU, more than SQLite's own writing of the rows. Here the
statement is compiled once per dialect, and each row becomes the driver's tuple with a lookup
per column; what the driver sees, and the transaction it runs in, are the same. (A driver with
named parameters, none of lwork's, gets ``Connection.execute``.)

Only for statements whose every value the caller gives: one that would need SQLAlchemy to fill a
Python-side default, or to render a parameter into the SQL (an expanding IN list), is refused
when first compiled. Inserts name their columns (``.values({name: bindparam(name)})``): a bare
``insert()`` compiles with every column, the autoincremented key too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import BindParameter, Connection, CursorResult, Select, bindparam
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """The parameters in the order the SQL takes them."""
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(index in ``names``, the type's conversion for the driver), for the types that have one."""
    arrange: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None
    """A row of ``ManyRows.columns``' values → in the SQL's order (None: it is already)."""


class ManyRows:
    """``statement`` (an insert or update of bound parameters only) for many rows in the
    caller's transaction: each row its parameters by name (``execute``) or, when ``columns``
    names them, its values in that order (``execute_values``: no mapping built per row only to
    be read back in the SQL's order, for the hottest writes)."""

    def __init__(self, statement: UpdateBase, columns: Sequence[str] = ()) -> None:
        self._statement = statement
        self.columns = tuple(columns)
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once for each of ``rows`` (its parameters by name), one
        ``executemany``; nothing for no rows. KeyError for a row that lacks a parameter;
        SQLAlchemy's errors (IntegrityError...) as ``Connection.execute`` raises them."""
        if not rows:
            return
        compiled = self._compiled_for(conn)
        if compiled is None:
            conn.execute(self._statement, list(rows))
            return
        names, processors = compiled.names, compiled.processors
        params: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[name] for name in names]
            for index, process in processors:
                values[index] = process(values[index])
            params.append(tuple(values))
        _run(conn, compiled.sql, params)

    def execute_values(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """``execute``, each row a tuple of the values of ``columns`` in their order."""
        if not self.columns:
            raise ValueError("rows of values need the columns they are the values of")
        if not rows:
            return
        compiled = self._compiled_for(conn)
        if compiled is None:
            named = [dict(zip(self.columns, row, strict=True)) for row in rows]
            conn.execute(self._statement, named)
            return
        arrange, processors = compiled.arrange, compiled.processors
        if arrange is not None:
            rows = [arrange(row) for row in rows]
        if processors:
            params: list[tuple[Any, ...]] = []
            for row in rows:
                values = list(row)
                for index, process in processors:
                    values[index] = process(values[index])
                params.append(tuple(values))
            rows = params
        _run(conn, compiled.sql, rows)

    def _compiled_for(self, conn: Connection) -> _Compiled | None:
        """The statement for ``conn``'s dialect (None: a driver with named parameters, which
        gets ``Connection.execute``)."""
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None and conn.dialect.positional:
            compiled = self._compiled[conn.dialect.name] = self._compile(conn.dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("a statement with Python-side defaults needs Connection.execute")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a statement rendering parameters into its SQL needs .execute")
        assert compiled.positiontup is not None  # a positional dialect's
        names = tuple(compiled.positiontup)
        processors = []
        for index, name in enumerate(names):
            kind = compiled.binds[name].type
            process = kind.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((index, process))
        arrange = None
        if self.columns and self.columns != names:
            if sorted(self.columns) != sorted(names):
                raise ValueError(f"the statement takes {names}, not the columns {self.columns}")
            # names differ in order, so there are two or more: itemgetter gives a tuple
            arrange = itemgetter(*(self.columns.index(name) for name in names))
        return _Compiled(compiled.string, names, tuple(processors), arrange)


def _run(conn: Connection, sql: str, params: Sequence[tuple[Any, ...]]) -> None:
    driver = conn.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        conn.exec_driver_sql(sql, list(params))
        return
    # SQLite's own driver (the hot path's thread) is handed the rows itself: through
    # ``exec_driver_sql`` each statement cost an execution context and cursor wrapping, more
    # than the executemany of a batch's handful of rows. Same connection, same transaction
    # (the driver begins it at the first write, as under SQLAlchemy); its errors are raised
    # as SQLAlchemy's (IntegrityError...), which the callers catch.
    try:
        driver.executemany(sql, params)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


_READS_KEPT = 1024
"""Compiled forms a ``ReadByKeys`` keeps (one per dialect and number of keys)."""


class ReadByKeys:
    """A ``SELECT`` of the rows whose key is one of many (``build(params)``: the query with
    ``column.in_(params)``), compiled once per dialect and number of keys.

    An IN list of expanding parameters is rendered again at every execution, and one of
    literals is coerced value by value and keyed for the cache: for a batch of settlements'
    two reads, a few hundred microseconds of the SQLite thread per batch. Built for each number
    of keys once, the query is handed its keys as the driver's tuple; its rows come back as
    the driver gives them (no result types converted: for plain strings and numbers)."""

    def __init__(self, build: Callable[[list[BindParameter[Any]]], Select[Any]]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, int], str] = {}

    def execute(self, conn: Connection, keys: Sequence[Any]) -> CursorResult[Any]:
        """The rows of ``keys`` (at least one), as ``conn.exec_driver_sql`` returns them."""
        if not conn.dialect.positional:
            params: list[BindParameter[Any]] = [
                bindparam(f"k{n}", key) for n, key in enumerate(keys)
            ]
            return conn.execute(self._build(params))
        sql = self._compiled.get((conn.dialect.name, len(keys)))
        if sql is None:
            params = [bindparam(f"k{n}") for n in range(len(keys))]
            compiled = self._build(params).compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)
            if compiled.positiontup != [f"k{n}" for n in range(len(keys))]:
                raise ValueError("the query takes parameters other than its keys")
            sql = compiled.string
            if len(self._compiled) < _READS_KEPT:
                self._compiled[(conn.dialect.name, len(keys))] = sql
        return conn.exec_driver_sql(sql, tuple(keys))
