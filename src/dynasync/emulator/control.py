"""The emulator's control plane: reset, seed, act as a Dynamics user, faults, clock, schema, apps (Python + HTTP)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dynasync.emulator import schema_ops
from dynasync.emulator import seed as seeding
from dynasync.emulator.catalog import EntityDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.http_types import ODataRequest, ODataResponse
from dynasync.emulator.odata_ast import Compare, Literal, Property
from dynasync.emulator.standard_tables import standard_catalog
from dynasync.emulator.store import OrgStore
from dynasync.emulator.values import LookupValue

if TYPE_CHECKING:
    from dynasync.emulator.app import Emulator

SEED_TABLES = ("accounts", "contacts", "leads", "opportunities", "users")


class ControlMixin:
    """Control operations of :class:`~dynasync.emulator.app.Emulator`; each is also an ``/_emulator`` route."""

    def _me(self) -> Emulator:
        return self  # type: ignore[return-value]

    # -- data ----------------------------------------------------------------------------------------------

    def seed(self, counts: Mapping[str, int]) -> None:
        """Add deterministic sample rows, e.g. ``{"accounts": 100, "contacts": 200}``."""
        me = self._me()
        if not counts:
            return
        unknown = set(counts) - set(SEED_TABLES)
        if unknown:
            raise ValueError(f"cannot seed {sorted(unknown)}; seedable: {', '.join(SEED_TABLES)}")
        with me.lock:
            seeding.seed(
                me.store,
                accounts=int(counts.get("accounts", 0)),
                contacts=int(counts.get("contacts", 0)),
                leads=int(counts.get("leads", 0)),
                opportunities=int(counts.get("opportunities", 0)),
                users=int(counts.get("users", 0)),
            )

    def reset(self, seed: Mapping[str, int] | None = None) -> None:
        """Wipe every row and custom table, re-create application users, seed again; clear faults and limits."""
        me = self._me()
        with me.lock:
            close = getattr(me.store, "close", None)
            if callable(close):
                close()
            if me.data_path:
                import pathlib

                for suffix in ("", "-wal", "-shm"):
                    pathlib.Path(me.data_path + suffix).unlink(missing_ok=True)
            me.catalog = standard_catalog()
            me.store = OrgStore(me.catalog, me.data_path, me.clock)
            self.prepare_org()
            for client_id, name in dict(me.app_users).items():
                me.add_application_user(client_id, name)
            me.faults.clear()
            me.limits.reset()
            me.tokens_expired_before = None
            me.seed(me.seed_counts if seed is None else seed)

    # -- principals ----------------------------------------------------------------------------------------

    def prepare_org(self) -> None:
        """Create the organization, business unit, currency and systemusers for the directory's users.

        The tenant administrator becomes the org administrator (the default interactive user).
        """
        me = self._me()
        admin = next((u for u in me.directory.users_of(me.tenant_id) if u.is_admin), None)
        with me.lock:
            seeding.seed_org(me.store, admin_oid=uuid.UUID(admin.object_id) if admin else None)
            for user in me.directory.users_of(me.tenant_id):
                self._ensure_interactive_user(user.object_id, user.upn, user.display_name)

    def add_application_user(self, client_id: str, name: str = "# application user") -> uuid.UUID:
        """Create the application user (systemuser with ``applicationid``) for an app; return its id."""
        me = self._me()
        app_id = uuid.UUID(client_id)
        with me.lock:
            existing = me.store.app_user(app_id)
            me.app_users[str(app_id)] = name
            if existing is not None:
                return uuid.UUID(str(existing["systemuserid"]))
            row = me.store.create(
                "systemuser",
                {
                    "applicationid": app_id,
                    "firstname": "#",
                    "lastname": name.lstrip("# ") or "app",
                    "accessmode": 4,
                },
                caller=None,
            )
            return uuid.UUID(str(row["systemuserid"]))

    def _ensure_interactive_user(self, object_id: str, upn: str, display_name: str) -> uuid.UUID:
        me = self._me()
        oid = uuid.UUID(object_id)
        rows = me.store.query(
            "systemuser",
            filter=Compare("eq", Property(("azureactivedirectoryobjectid",)), Literal(oid, "guid")),
            orderby=[],
            after=None,
            limit=1,
        )
        if rows:
            return uuid.UUID(str(rows[0]["systemuserid"]))
        first, _, last = display_name.partition(" ")
        values: dict[str, object] = {
            "azureactivedirectoryobjectid": oid,
            "domainname": upn,
            "internalemailaddress": upn,
            "firstname": first,
            "lastname": last or first,
            "accessmode": 0,
        }
        unit = me.store.business_unit_id
        if unit is not None:
            values["businessunitid"] = LookupValue("businessunit", unit)
        row = me.store.create("systemuser", values, caller=None)
        return uuid.UUID(str(row["systemuserid"]))

    def add_user(
        self, upn: str, password: str, display_name: str = "", *, in_org: bool = True
    ) -> dict[str, str]:
        """Create an Entra user (who can sign in) and, when ``in_org``, their systemuser in the org."""
        me = self._me()
        user = me.directory.add_user(me.tenant_id, upn, password, display_name=display_name)
        me.identity.notify_directory_changed()
        result = {"object_id": user.object_id, "upn": user.upn}
        if in_org:
            with me.lock:
                result["systemuserid"] = str(
                    self._ensure_interactive_user(user.object_id, user.upn, user.display_name)
                )
        return result

    def register_app(
        self,
        display_name: str = "Integration app",
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        admin_consent: bool = True,
        application_user: bool = True,
        redirect_uris: tuple[str, ...] = ("http://localhost",),
    ) -> dict[str, str]:
        """Register an app (with Dynamics ``user_impersonation``, a secret, consent) and its application user."""
        me = self._me()
        ready = me.directory.create_ready_app(
            me.tenant_id,
            display_name=display_name,
            redirect_uris=redirect_uris,
            admin_consent=admin_consent,
            now=me.clock.now(),
            client_id=client_id,
            secret_value=client_secret,
        )
        me.identity.notify_directory_changed()
        result = {
            "tenant_id": ready.tenant_id,
            "client_id": ready.client_id,
            "client_secret": ready.client_secret,
        }
        if application_user:
            result["systemuserid"] = str(me.add_application_user(ready.client_id, f"# {display_name}"))
        return result

    def interactive_user_id(self, upn: str | None = None) -> uuid.UUID:
        """The systemuserid of a directory user (default: the tenant administrator)."""
        me = self._me()
        if upn is None and me.store.admin_user_id is not None:
            return me.store.admin_user_id
        users = me.directory.users_of(me.tenant_id)
        chosen = next((u for u in users if upn is None or u.upn == upn.lower()), None)
        if chosen is None:
            raise EmulatorError(404, "0x80040217", f"systemuser With Id = {upn} Does Not Exist")
        with me.lock:
            return self._ensure_interactive_user(chosen.object_id, chosen.upn, chosen.display_name)

    # -- acting as a Dynamics user -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        as_user: str | None = None,
        headers: Mapping[str, str] | None = None,
        base_url: str = "https://emulator.local/api/data/v9.2/",
    ) -> ODataResponse:
        """Run one Web API request as an interactive Dynamics user (no token, no limits, no faults)."""
        from dynasync.emulator.webapi import handle

        me = self._me()
        caller = self.interactive_user_id(as_user)
        resource, _, query = path.partition("?")
        request = ODataRequest(
            method=method.upper(),
            path=resource.lstrip("/"),
            query=query,
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=orjson.dumps(body) if body is not None else b"",
            base_url=base_url,
            caller_id=str(caller),
        )
        with me.lock:
            return handle(me, request)

    def user_create(
        self, entity_set: str, values: Mapping[str, Any], *, as_user: str | None = None
    ) -> uuid.UUID:
        """Create a row as a Dynamics user (Web API JSON body); return its id."""
        response = self.call("POST", entity_set, values, as_user=as_user)
        _raise_for(response)
        entity_id = response.headers["OData-EntityId"]
        return uuid.UUID(entity_id[entity_id.rindex("(") + 1 : -1])

    def user_update(
        self,
        entity_set: str,
        row_id: uuid.UUID | str,
        values: Mapping[str, Any],
        *,
        as_user: str | None = None,
    ) -> None:
        """Update a row as a Dynamics user."""
        _raise_for(
            self.call("PATCH", f"{entity_set}({row_id})", values, as_user=as_user, headers={"If-Match": "*"})
        )

    def user_delete(self, entity_set: str, row_id: uuid.UUID | str, *, as_user: str | None = None) -> None:
        """Delete a row as a Dynamics user."""
        _raise_for(self.call("DELETE", f"{entity_set}({row_id})", as_user=as_user))

    # -- time, tokens, settings, faults, schema ------------------------------------------------------------

    def advance_clock(self, seconds: float = 0, *, days: float = 0) -> dt.datetime:
        """Move the emulator clock forward (negative: back); return the new time."""
        me = self._me()
        me.clock.advance(dt.timedelta(days=days, seconds=seconds))
        return me.clock.now()

    def expire_change_tokens(self) -> None:
        """Make every change-tracking token issued so far expired (0x80044352 on its next use)."""
        me = self._me()
        me.tokens_expired_before = me.clock.now()

    def update_settings(self, **changes: Any) -> None:
        """Change settings (validated), e.g. ``update_settings(requests_per_window=10)``."""
        me = self._me()
        me.settings = me.settings.with_changes(**changes)
        if "change_token_expiry_days" in changes:
            # The service keeps this on the organization row (expirechangetrackingindays); keep both in step.
            organization = me.store.organization_id
            wanted = int(changes["change_token_expiry_days"])
            if organization is not None and me.store.change_tracking_expiry_days != wanted:
                with me.lock:
                    me.store.update(
                        "organization",
                        organization,
                        {"expirechangetrackingindays": wanted},
                        caller=None,
                    )

    def set_change_tracking(self, table: str, enabled: bool) -> None:
        """Turn change tracking on or off for a table."""
        me = self._me()
        entity = _entity(me, table)
        with me.lock:
            me.store.set_change_tracking(entity.logical_name, enabled)
            entity.change_tracking = enabled

    def add_table(self, spec: Mapping[str, Any]) -> EntityDef:
        """Add a custom table (see :func:`dynasync.emulator.schema_ops.build_table` for the spec)."""
        me = self._me()
        with me.lock:
            entity = schema_ops.build_table(me.catalog, spec)
            me.store.add_entity(entity)
            return entity

    def add_column(self, table: str, spec: Mapping[str, Any]) -> None:
        """Add a column to a table (see :func:`dynasync.emulator.schema_ops.build_columns` for the spec)."""
        me = self._me()
        entity = _entity(me, table)
        with me.lock:
            for attribute in schema_ops.build_columns(entity, spec):
                me.store.add_attribute(entity.logical_name, attribute)

    def state(self) -> dict[str, Any]:
        """A JSON-able summary: clock, settings, faults, tables with change tracking and row counts."""
        me = self._me()
        with me.lock:
            tables = {
                e.logical_name: {
                    "entity_set": e.entity_set_name,
                    "change_tracking": e.change_tracking,
                    "rows": me.store.count(e.logical_name, None),
                }
                for e in me.catalog.entities.values()
            }
        settings = {
            k: getattr(me.settings, k) for k in me.settings.__dataclass_fields__ if not k.startswith("_")
        }
        return {
            "now": me.clock.now().isoformat(),
            "tenant_id": me.tenant_id,
            "version": me.store.version,
            "settings": settings,
            "faults": me.faults.pending(),
            "tokens_expired_before": me.tokens_expired_before.isoformat()
            if me.tokens_expired_before
            else None,
            "tables": tables,
        }


def _entity(emulator: Emulator, table: str) -> EntityDef:
    entity = emulator.catalog.entity(table) or emulator.catalog.by_set_name(table)
    if entity is None:
        raise EmulatorError(404, "0x80060888", f"Resource not found for the segment '{table}'.")
    return entity


def _raise_for(response: ODataResponse) -> None:
    if response.status >= 400:
        error = orjson.loads(response.body)["error"]
        raise EmulatorError(response.status, error["code"], error["message"])
