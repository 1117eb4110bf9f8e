"""Functions of the embedded function host: their versions and aliases.

A version doc holds the Lambda ``FunctionConfiguration`` members of that version
(``$LATEST`` is the editable one); an alias doc the ``AliasConfiguration`` members. ARNs
are not stored: they are rendered with the server's region.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from shipyard.store import schema
from shipyard.store.dialects import for_update
from shipyard.store.quick_reads import QuickReads, json_value

LATEST = "$LATEST"
Doc = dict[str, Any]

_f = schema.functions.c
_v = schema.function_versions.c
_a = schema.function_aliases.c


def exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(_f.name).where(_f.name == name)).first() is not None


def create(conn: Connection, name: str, latest: Doc, now: float) -> None:
    conn.execute(schema.functions.insert().values(name=name, last_version=0, created=now))
    conn.execute(
        schema.function_versions.insert().values(function_name=name, version=LATEST, doc=latest)
    )


# Built once: every Invoke runs these (a reused statement keeps its memoised cache key).
_GET_VERSION = select(_v.doc).where(
    (_v.function_name == bindparam("name")) & (_v.version == bindparam("version"))
)
_GET_ALIAS = select(_a.doc).where(
    (_a.function_name == bindparam("name")) & (_a.name == bindparam("alias"))
)


def get_version(conn: Connection, name: str, version: str) -> Doc | None:
    row = conn.execute(_GET_VERSION, {"name": name, "version": version}).first()
    return dict(row[0]) if row else None


# The same reads outside any transaction, for Invoke (store/quick_reads.py says why).


def read_version(reads: QuickReads, name: str, version: str) -> Doc | None:
    row = reads.first(_GET_VERSION, {"name": name, "version": version})
    return dict(json_value(row[0])) if row else None


def read_alias(reads: QuickReads, name: str, alias: str) -> Doc | None:
    row = reads.first(_GET_ALIAS, {"name": name, "alias": alias})
    return dict(json_value(row[0])) if row else None


def put_latest(conn: Connection, name: str, doc: Doc) -> None:
    table = schema.function_versions
    conn.execute(
        table.update().where((_v.function_name == name) & (_v.version == LATEST)).values(doc=doc)
    )


def versions(conn: Connection, name: str) -> list[Doc]:
    """Every version of a function: ``$LATEST`` first, then published ones by number."""
    rows = conn.execute(select(_v.version, _v.doc).where(_v.function_name == name)).all()
    return [dict(doc) for _, doc in sorted(rows, key=lambda row: _version_order(row[0]))]


def all_versions(conn: Connection, *, published: bool) -> list[Doc]:
    """``$LATEST`` of every function (and every published version when ``published``)."""
    query = select(_v.function_name, _v.version, _v.doc)
    if not published:
        query = query.where(_v.version == LATEST)
    rows = conn.execute(query).all()
    ordered = sorted(rows, key=lambda row: (row[0], _version_order(row[1])))
    return [dict(doc) for _, _, doc in ordered]


def publish(conn: Connection, name: str, doc: Doc) -> str:
    """Store ``doc`` as the function's next version number; returns that number."""
    query = for_update(select(_f.last_version).where(_f.name == name), conn.dialect.name)
    number = int(conn.execute(query).scalar_one()) + 1
    conn.execute(schema.functions.update().where(_f.name == name).values(last_version=number))
    version = str(number)
    conn.execute(
        schema.function_versions.insert().values(
            function_name=name, version=version, doc={**doc, "Version": version}
        )
    )
    return version


def delete_version(conn: Connection, name: str, version: str) -> None:
    conn.execute(
        schema.function_versions.delete().where(
            (_v.function_name == name) & (_v.version == version)
        )
    )


def delete(conn: Connection, name: str) -> None:
    """The function, every version and every alias."""
    conn.execute(schema.function_aliases.delete().where(_a.function_name == name))
    conn.execute(schema.function_versions.delete().where(_v.function_name == name))
    conn.execute(schema.functions.delete().where(_f.name == name))


def code_in_use(conn: Connection, name: str, code_sha256: str) -> bool:
    """Whether any version of the function still runs the code with this hash."""
    return any(doc.get("CodeSha256") == code_sha256 for doc in versions(conn, name))


# -- aliases -------------------------------------------------------------------------------


def get_alias(conn: Connection, function: str, alias: str) -> Doc | None:
    row = conn.execute(_GET_ALIAS, {"name": function, "alias": alias}).first()
    return dict(row[0]) if row else None


def create_alias(conn: Connection, function: str, doc: Doc) -> None:
    conn.execute(
        schema.function_aliases.insert().values(function_name=function, name=doc["Name"], doc=doc)
    )


def put_alias(conn: Connection, function: str, doc: Doc) -> None:
    table = schema.function_aliases
    conn.execute(
        table.update()
        .where((_a.function_name == function) & (_a.name == doc["Name"]))
        .values(doc=doc)
    )


def delete_alias(conn: Connection, function: str, alias: str) -> None:
    conn.execute(
        schema.function_aliases.delete().where((_a.function_name == function) & (_a.name == alias))
    )


def aliases(conn: Connection, function: str) -> list[Doc]:
    rows = conn.execute(select(_a.doc).where(_a.function_name == function).order_by(_a.name)).all()
    return [dict(row[0]) for row in rows]


def _version_order(version: str) -> tuple[int, int]:
    return (0, 0) if version == LATEST else (1, int(version))
