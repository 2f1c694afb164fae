from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from dynasync.emulator.errors import EmulatorError
from dynasync.emulator.odata import (
    ExpandItem,
    parse_expand,
    parse_filter,
    parse_key,
    parse_orderby,
    parse_select,
)
from dynasync.emulator.odata_ast import And, Call, Compare, Lambda, Literal, Not, Or, Property, QueryFunction

G = "78914942-34cb-ed11-b596-0022481d68cd"


def error_of(fn: object, *args: object) -> EmulatorError:
    with pytest.raises(EmulatorError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def test_comparisons_and_literals() -> None:
    assert parse_filter("name eq 'O''Bryan'") == Compare(
        "eq", Property(("name",)), Literal("O'Bryan", "string")
    )
    assert parse_filter("revenue gt 5000").right == Literal(5000, "int")  # type: ignore[union-attr]
    assert parse_filter("x le -1.5").right == Literal(Decimal("-1.5"), "decimal")  # type: ignore[union-attr]
    assert parse_filter("x eq 1.5e3").right == Literal(Decimal("1.5e3"), "decimal")  # type: ignore[union-attr]
    assert parse_filter("x eq true").right == Literal(True, "bool")  # type: ignore[union-attr]
    assert parse_filter("x ne null").right == Literal(None, "null")  # type: ignore[union-attr]
    node = parse_filter(f"_parentcustomerid_value eq {G.upper()}")
    assert node == Compare("eq", Property(("_parentcustomerid_value",)), Literal(uuid.UUID(G), "guid"))
    node = parse_filter("modifiedon ge 2021-04-28T15:19:30Z")
    assert node.right == Literal(dt.datetime(2021, 4, 28, 15, 19, 30, tzinfo=dt.UTC), "datetime")  # type: ignore[union-attr]
    node = parse_filter("modifiedon ge 2021-04-28T17:19:30+02:00")
    assert node.right.value == dt.datetime(2021, 4, 28, 15, 19, 30, tzinfo=dt.UTC)  # type: ignore[union-attr]
    assert parse_filter("birthdate eq 2020-01-31").right == Literal(dt.date(2020, 1, 31), "date")  # type: ignore[union-attr]
    node = parse_filter("OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'")
    assert node.right == Literal("UserOwned", "enum")  # type: ignore[union-attr]
    assert parse_filter("firstname eq lastname") == Compare(
        "eq", Property(("firstname",)), Property(("lastname",))
    )
    assert parse_filter("CanCreateAttributes/Value eq true").left == Property(
        ("CanCreateAttributes", "Value")
    )  # type: ignore[union-attr]


def test_logic_precedence_and_parentheses() -> None:
    node = parse_filter("a eq 1 or b eq 2 and c eq 3")
    assert isinstance(node, Or) and isinstance(node.right, And)
    node = parse_filter("(a eq 1 or b eq 2) and not contains(name,'x')")
    assert isinstance(node, And) and isinstance(node.left, Or)
    assert node.right == Not(Call("contains", (Property(("name",)), Literal("x", "string"))))


def test_lambdas_and_traversal() -> None:
    assert parse_filter("primarycontactid/fullname eq 'X'").left == Property(("primarycontactid", "fullname"))  # type: ignore[union-attr]
    node = parse_filter("Account_Tasks/all(t:t/statecode eq 1)")
    assert node == Lambda(
        "Account_Tasks", "all", "t", Compare("eq", Property(("t", "statecode")), Literal(1, "int"))
    )
    assert parse_filter("opportunity_customer_accounts/any()") == Lambda(
        "opportunity_customer_accounts", "any", None, None
    )
    node = parse_filter("a/any(x: x/b/any(y: y/c eq 1))")
    assert isinstance(node, Lambda) and isinstance(node.predicate, Lambda)


def test_query_functions() -> None:
    node = parse_filter(
        'Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","2000"])'
    )
    assert node == QueryFunction("Between", "numberofemployees", ("5", "2000"))
    node = parse_filter(
        "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)",
        {"@p1": "'lastname'", "@p2": '["OBrian","O\'Brian"]'},
    )
    assert node == QueryFunction("In", "lastname", ("OBrian", "O'Brian"))
    assert parse_filter(
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7)"
    ) == QueryFunction("LastXDays", "createdon", (7,))
    assert parse_filter("Microsoft.Dynamics.CRM.Today(PropertyName='createdon')") == QueryFunction(
        "Today", "createdon", ()
    )
    node = parse_filter(
        "Microsoft.Dynamics.CRM.InFiscalPeriodAndYear(PropertyName='x',PropertyValue1=2,PropertyValue2=2024)"
    )
    assert node == QueryFunction("InFiscalPeriodAndYear", "x", (2, 2024))
    node = parse_filter("Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b'])")
    assert node == QueryFunction("In", "x", ("a", "b"))


def test_aliases() -> None:
    node = parse_filter("@p1 ne @p3", {"@p1": "revenue"})
    assert node == Compare("ne", Property(("revenue",)), Literal(None, "null"))
    assert parse_filter("name eq @n", {"@n": "'x'"}).right == Literal("x", "string")  # type: ignore[union-attr]


def test_service_error_texts() -> None:
    e = error_of(parse_filter, "lastname eq 'O'Bryan'")
    assert (e.status, e.code) == (400, "0x80060888")
    assert e.message == "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    e = error_of(parse_filter, "revenue add 5 eq 10")
    assert e.status == 400 and "'add'" in e.message
    for op in ("sub", "mul", "div", "mod", "has"):
        assert f"'{op}'" in error_of(parse_filter, f"x {op} 1").message
    assert "'tolower'" in error_of(parse_filter, "tolower(name) eq 'x'").message
    assert "unknown function with name 'foo'" in error_of(parse_filter, "foo(name) eq 'x'").message
    assert "Syntax error" in error_of(parse_filter, "name eq eq 'x'").message
    assert "Expression expected" in error_of(parse_filter, "").message
    assert error_of(parse_filter, "(name eq 'x'").code == "0x80060888"
    assert (
        "Invalid JSON"
        in error_of(
            parse_filter, 'Microsoft.Dynamics.CRM.In(PropertyName=\'x\',PropertyValues=["a" "b"])'
        ).message
    )


def test_select_orderby() -> None:
    assert parse_select("name, _primarycontactid_value,revenue") == [
        "name",
        "_primarycontactid_value",
        "revenue",
    ]
    assert error_of(parse_select, "name,,x").code == "0x80060888"
    assert parse_orderby("revenue asc,name desc") == [("revenue", False), ("name", True)]
    assert parse_orderby("@p1 desc,name", {"@p1": "revenue"}) == [("revenue", True), ("name", False)]
    e = error_of(parse_orderby, "name asc,name desc")
    assert e.code == "0x80048d16"
    assert error_of(parse_orderby, "name sideways").status == 400


def test_expand() -> None:
    items = parse_expand(
        "primarycontactid($select=fullname;$expand=parentcustomerid_account($select=name)),"
        "Account_Tasks($select=subject;$filter=contains(subject,'a;b');$orderby=createdon desc;$top=5),owninguser/$ref"
    )
    assert items[0].navigation == "primarycontactid" and items[0].select == ["fullname"]
    assert items[0].expand == [ExpandItem("parentcustomerid_account", select=["name"])]
    assert items[1].filter == Call("contains", (Property(("subject",)), Literal("a;b", "string")))
    assert items[1].orderby == [("createdon", True)] and items[1].top == 5
    assert items[2] == ExpandItem("owninguser", ref=True)
    assert "$skip" in error_of(parse_expand, "a($skip=1)").message
    assert error_of(parse_expand, ",".join(f"n{i}" for i in range(16))).status == 400


def test_keys() -> None:
    assert parse_key(G) == uuid.UUID(G)
    assert parse_key(f"accountid={G}") == {"accountid": uuid.UUID(G)}
    assert parse_key("accountnumber='A''1'") == {"accountnumber": "A'1"}
    assert parse_key("firstname='Joe',emailaddress1='abc@example.com'") == {
        "firstname": "Joe",
        "emailaddress1": "abc@example.com",
    }
    assert parse_key(f"_primarycontactid_value={G}") == {"_primarycontactid_value": uuid.UUID(G)}
    assert parse_key("new_num=5") == {"new_num": 5}
    assert parse_key("LogicalName='account'") == {"LogicalName": "account"}
    for bad in ("{" + G + "}", "", "a=", "a='x' b='y'"):
        assert error_of(parse_key, bad).code == "0x80060888"
