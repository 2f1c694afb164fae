"""Web API JSON bodies to store values: column conversion, validation and ``@odata.bind`` resolution.

Error codes and texts follow the service (``docs/dataverse-web-api.md`` §6.1): unknown property and type errors
are ``0x80048d19``, over-long strings ``0x80044331`` (with the service's two spaces), out-of-range choices and
numbers ``0x8004431A``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from dynasync.emulator.catalog import AttributeDef, AttributeType, Catalog, EntityDef, RelationshipDef
from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.odata import parse_key
from dynasync.emulator.store_schema import edm_type
from dynasync.emulator.values import LookupValue

if TYPE_CHECKING:
    from dynasync.emulator.store import OrgStore

Resolver = Callable[[str], tuple[str, uuid.UUID]]
_SERVICE_ROOT = re.compile(r"^.*?/api/data/v9\.\d/")
_INT_TYPES = (AttributeType.INTEGER, AttributeType.BIGINT)
_CHOICE_TYPES = (AttributeType.PICKLIST, AttributeType.STATE, AttributeType.STATUS)


def payload_error(message: str) -> EmulatorError:
    """400 ``0x80048d19`` (ODataClientPayloadError)."""
    return EmulatorError(400, "0x80048d19", message)


def _type_name(entity: EntityDef) -> str:
    return f"Microsoft.Dynamics.CRM.{entity.logical_name}"


def unknown_property(entity: EntityDef, name: str) -> EmulatorError:
    """The service's error for a body property the table does not have."""
    return payload_error(
        f"The property '{name}' does not exist on type '{_type_name(entity)}'. Make sure to only use property "
        "names that are defined by the type."
    )


def undeclared_property(name: str) -> EmulatorError:
    """The service's error for ``x@odata.bind`` where ``x`` is not a navigation property (names are case-sensitive)."""
    return payload_error(
        f"An undeclared property '{name}' which only has property annotations in the payload but no property value "
        "was found in the payload. In OData, only declared navigation properties and declared named streams can be "
        "represented as properties without values."
    )


def cannot_convert(value: object, edm: str) -> EmulatorError:
    """The service's type-conversion error."""
    shown = "true" if value is True else "false" if value is False else value
    return payload_error(f"Cannot convert the literal '{shown}' to the expected type '{edm}'.")


def out_of_range(entity: EntityDef, attribute: AttributeDef, value: object) -> EmulatorError:
    """400 ``0x8004431A`` for a choice or number outside the column's range."""
    message = (
        f"A validation error occurred. The value {value} of '{attribute.logical_name}' on record of type "
        f"'{entity.logical_name}' is outside the valid range."
    )
    if attribute.options and attribute.type != AttributeType.BOOLEAN:
        message += " Accepted Values: " + ",".join(str(o.value) for o in attribute.options)
    return EmulatorError(400, "0x8004431A", message)


def read_only(entity: EntityDef, attribute: AttributeDef, for_create: bool) -> EmulatorError:
    """400 for a column that is not valid for create (or update)."""
    action = "create" if for_create else "update"
    return EmulatorError(
        400,
        "0x80040203",
        f"The '{attribute.logical_name}' attribute of the '{entity.logical_name}' entity is not valid for {action}.",
    )


@dataclass(slots=True)
class Nested:
    """Deep-insert children or collection binds found under one navigation property of a body."""

    navigation: str
    entity: str
    relationship: RelationshipDef | None  # set for collection-valued navigations
    lookup: str | None  # set for single-valued navigations: the lookup column the child fills
    bodies: list[dict[str, Any]] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)


def _single_navs(entity: EntityDef) -> dict[str, tuple[AttributeDef, str]]:
    return {
        nav: (a, target)
        for a in entity.attributes.values()
        if a.is_lookup
        for nav, target in a.navigation.items()
    }


def _collection_navs(catalog: Catalog, entity: EntityDef) -> dict[str, RelationshipDef]:
    return {r.referenced_navigation: r for r in catalog.relationships_from(entity.logical_name)}


def split_deep_insert(
    catalog: Catalog, entity: str, body: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Nested]]:
    """Separate deep-insert values and collection binds from the columns of a body.

    Returns the body without them and the nested parts, for the caller to create (children of collection
    navigations after the parent, a single-valued child before it, then bound into the lookup).
    """
    e = catalog.entity(entity)
    if e is None:
        raise EmulatorError(404, "0x80060888", f"Resource not found for the segment '{entity}'.")
    singles, collections = _single_navs(e), _collection_navs(catalog, e)
    rest: dict[str, Any] = {}
    nested: list[Nested] = []
    for key, value in body.items():
        name, _, annotation = key.partition("@")
        if annotation == "odata.bind" and name in collections and isinstance(value, list):
            r = collections[name]
            nested.append(Nested(name, r.referencing_entity, r, None, binds=[str(v) for v in value]))
        elif not annotation and name in collections and isinstance(value, list):
            r = collections[name]
            if not all(isinstance(v, dict) for v in value):
                raise payload_error(
                    f"The collection-valued navigation property '{name}' expects an array of objects."
                )
            nested.append(Nested(name, r.referencing_entity, r, None, bodies=list(value)))
        elif not annotation and name in singles and isinstance(value, dict):
            attribute, target = singles[name]
            nested.append(Nested(name, target, None, attribute.logical_name, bodies=[dict(value)]))
        else:
            rest[key] = value
    return rest, nested


def reference_text(value: str) -> str:
    """Strip the service root and a leading slash from an ``@odata.bind``/``@odata.id`` value."""
    text = _SERVICE_ROOT.sub("", value.strip())
    return text.lstrip("/")


def parse_payload(
    catalog: Catalog,
    entity: str,
    body: Mapping[str, Any],
    *,
    for_create: bool,
    resolve_ref: Resolver,
) -> dict[str, object]:
    """Convert a JSON body into store values (columns by logical name, binds as :class:`LookupValue`).

    Args:
        catalog: The org's tables.
        entity: Logical name of the table written.
        body: The parsed JSON object (deep-insert parts removed by :func:`split_deep_insert` first).
        for_create: True for POST/create (checks IsValidForCreate), False for update.
        resolve_ref: Turns ``"contacts(<guid>)"``, ``"contacts(key='v')"`` or ``"$1"`` into (table, id).

    Raises:
        EmulatorError: The service's validation errors.
    """
    e = catalog.entity(entity)
    if e is None:
        raise EmulatorError(404, "0x80060888", f"Resource not found for the segment '{entity}'.")
    singles = _single_navs(e)
    collections = _collection_navs(catalog, e)
    values: dict[str, object] = {}
    for key, value in body.items():
        if key.startswith("@"):
            continue  # instance annotations: @odata.type, @odata.etag, @odata.context...
        name, _, annotation = key.partition("@")
        if annotation:
            if annotation != "odata.bind":
                continue  # property annotations (FormattedValue...) are ignored on input
            if name in collections:
                raise payload_error(
                    f"Binding the collection-valued navigation property '{name}' must use an array and is handled "
                    "with deep insert; remove it with split_deep_insert first."
                )
            if name not in singles:
                raise undeclared_property(name)
            attribute, target = singles[name]
            _check_writable(e, attribute, for_create)
            values[attribute.logical_name] = _bind(catalog, attribute, name, target, value, resolve_ref)
            continue
        if name in collections or (name in singles and isinstance(value, (dict, list))):
            raise payload_error(
                f"Deep insert through '{name}' must be split off with split_deep_insert first."
            )
        if name.startswith("_") and name.endswith("_value") and name[1:-6] in e.attributes:
            raise payload_error(
                "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead."
            )
        column = e.attributes.get(name)
        if column is not None and column.is_lookup:
            raise payload_error(
                f"A node of type 'PrimitiveValue' was read from the JSON reader when trying to read the contents of "
                f"the navigation property '{name}'; however, a 'StartObject' node was expected. Use "
                f"'{name}@odata.bind' to set a lookup."
            )
        if column is None or not column.is_odata_property:
            raise unknown_property(e, name)
        if not column.is_primary_id:
            _check_writable(e, column, for_create)
        values[name] = convert_value(e, column, value)
    return values


def _check_writable(entity: EntityDef, attribute: AttributeDef, for_create: bool) -> None:
    if (for_create and not attribute.valid_for_create) or (not for_create and not attribute.valid_for_update):
        raise read_only(entity, attribute, for_create)


def _bind(
    catalog: Catalog,
    attribute: AttributeDef,
    navigation: str,
    target: str,
    value: object,
    resolve_ref: Resolver,
) -> LookupValue | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise payload_error(f"The value of '{navigation}@odata.bind' must be a URL string.")
    bound_entity, bound_id = resolve_ref(reference_text(value))
    allowed = set(attribute.targets) if attribute.type == AttributeType.OWNER else {target}
    if bound_entity not in allowed:
        expected = catalog.entity(target)
        got = catalog.entity(bound_entity)
        raise payload_error(
            f"The navigation property '{navigation}' expects a reference to "
            f"'{expected.entity_set_name if expected else target}', not to "
            f"'{got.entity_set_name if got else bound_entity}'."
        )
    return LookupValue(bound_entity, bound_id)


def convert_value(entity: EntityDef, attribute: AttributeDef, value: object) -> object:
    """Convert one JSON value to the column's store value, validating type, length and range."""
    if value is None:
        return None
    t = attribute.type
    edm = edm_type(attribute)
    if attribute.is_multiselect:
        return _multiselect(entity, attribute, value)
    if t in (AttributeType.STRING, AttributeType.MEMO, AttributeType.ENTITYNAME):
        if not isinstance(value, str):
            raise cannot_convert(value, edm)
        if attribute.max_length is not None and len(value) > attribute.max_length:
            raise EmulatorError(
                400,
                "0x80044331",
                f"A validation error occurred.  The length of the '{attribute.logical_name}' attribute of the "
                f"'{entity.logical_name}' entity exceeded the maximum allowed length of '{attribute.max_length}'.",
            )
        return value
    if t == AttributeType.BOOLEAN:
        if not isinstance(value, bool):
            raise cannot_convert(value, edm)
        return value
    if t in _INT_TYPES or t in _CHOICE_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise cannot_convert(value, edm)
        if t in _CHOICE_TYPES:
            if not any(o.value == value for o in attribute.options):
                raise out_of_range(entity, attribute, value)
        else:
            _check_range(entity, attribute, value)
        return value
    if t in (AttributeType.MONEY, AttributeType.DECIMAL):
        number = _decimal(value, edm)
        _check_range(entity, attribute, number)
        return number
    if t == AttributeType.DOUBLE:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise cannot_convert(value, edm)
        _check_range(entity, attribute, value)
        return float(value)
    if t == AttributeType.DATETIME:
        return _datetime(attribute, value, edm)
    if t == AttributeType.UNIQUEIDENTIFIER:
        if not isinstance(value, str):
            raise cannot_convert(value, edm)
        try:
            return uuid.UUID(value)
        except ValueError:
            raise cannot_convert(value, edm) from None
    raise payload_error(f"The property '{attribute.logical_name}' cannot be written.")


def _check_range(entity: EntityDef, attribute: AttributeDef, value: float | Decimal) -> None:
    lo, hi = attribute.min_value, attribute.max_value
    if (lo is not None and value < Decimal(str(lo))) or (hi is not None and value > Decimal(str(hi))):
        raise out_of_range(entity, attribute, value)


def _decimal(value: object, edm: str) -> Decimal:
    if isinstance(value, bool):
        raise cannot_convert(value, edm)
    if isinstance(value, (int, float, str)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise cannot_convert(value, edm) from None
        if number.is_finite():
            return number
    raise cannot_convert(value, edm)


def _datetime(attribute: AttributeDef, value: object, edm: str) -> dt.date | dt.datetime:
    if not isinstance(value, str):
        raise cannot_convert(value, edm)
    if edm == "Edm.Date":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise cannot_convert(value, edm) from None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise cannot_convert(value, edm) from None
    if parsed.tzinfo is None:
        if "T" in value:
            raise cannot_convert(value, edm)  # Edm.DateTimeOffset needs an offset or Z
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(microsecond=0)


def _multiselect(entity: EntityDef, attribute: AttributeDef, value: object) -> tuple[int, ...] | None:
    if not isinstance(value, str):
        raise cannot_convert(value, "Edm.String")
    if not value.strip():
        return None
    result: list[int] = []
    for part in value.split(","):
        try:
            number = int(part.strip())
        except ValueError:
            raise cannot_convert(value, "Edm.String") from None
        if not any(o.value == number for o in attribute.options):
            raise out_of_range(entity, attribute, number)
        if number not in result:
            result.append(number)
    return tuple(sorted(result))


def store_resolver(store: OrgStore) -> Resolver:
    """A resolver for ``"<set>(<key>)"`` references against a store (404 when the row does not exist)."""

    def resolve(text: str) -> tuple[str, uuid.UUID]:
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", text.strip())
        if match is None:
            raise EmulatorError(400, "0x80060888", f"The reference '{text}' is not a valid entity URL.")
        entity = store.catalog.by_set_name(match.group(1))
        if entity is None:
            raise EmulatorError(404, "0x80060888", f"Resource not found for the segment '{match.group(1)}'.")
        key = parse_key(match.group(2))
        row = store.find(entity.logical_name, key, select=[entity.primary_id])
        if row is None:
            raise EmulatorError(
                404, "0x80040217", f"{entity.logical_name} With Id = {_key_text(key)} Does Not Exist"
            )
        row_id = row[entity.primary_id]
        assert isinstance(row_id, uuid.UUID)
        return entity.logical_name, row_id

    return resolve


def _key_text(key: uuid.UUID | Mapping[str, Any]) -> str:
    if isinstance(key, uuid.UUID):
        return str(key)
    return ",".join(f"{k}={v}" for k, v in key.items())
