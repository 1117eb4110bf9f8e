"""Every secret the store keeps, sealed by the server's SecretBox, and the check that
the configured key is the one the database's secrets were sealed with.

Stored secrets: access key secrets (``credentials``) and trigger signing secrets
(``resource_tags``, see ``deliveries``). A new kind of stored secret adds its reseal here.
"""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from shipyard.config import ConfigError
from shipyard.secretbox import SecretBox, SecretBoxError, resealed
from shipyard.store import credentials, deliveries, schema

SECRET_TABLES = (schema.credentials.name, schema.resource_tags.name, schema.meta.name)
KEY_CHECK = "secret_key_check"
_CHECK_TEXT = "shipyard secret key check"
_m = schema.meta.c


def reseal_all(conn: Connection, box: SecretBox) -> int:
    """Seal under the current key every stored secret that is not; how many were."""
    return credentials.reseal(conn, box) + deliveries.reseal_secrets(conn, box)


def check_key(conn: Connection, box: SecretBox) -> None:
    """Refuse a key that cannot open this database's secrets (a lost or wrong key file,
    another replica's key); remember the key on first use."""
    row = conn.execute(select(_m.value).where(_m.key == KEY_CHECK)).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    schema.meta.insert().values(
                        key=KEY_CHECK, value=box.seal(_CHECK_TEXT, KEY_CHECK)
                    )
                )
        except IntegrityError:
            pass  # another replica starting at the same time wrote it
        return
    try:
        box.open(row[0], KEY_CHECK)
    except SecretBoxError as exc:
        raise ConfigError(
            f"the secret key does not match this database ({exc}): restore the key file "
            "it was set up with (see docs/operations.md, Secrets and data at rest)"
        ) from None
    sealed = resealed(box, row[0], KEY_CHECK)
    if sealed is not None:
        conn.execute(schema.meta.update().where(_m.key == KEY_CHECK).values(value=sealed))
