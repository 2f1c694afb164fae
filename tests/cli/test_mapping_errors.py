"""Bad mapping files through the CLI: every problem located (file:line), exit code 2, nothing published."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynasync.emulator.server import EmulatorServer

from .helpers import Cli, one_paragraph_error

pytestmark = pytest.mark.e2e

GOOD_ACCOUNT = [
    "format: 1",
    "synapse: dyn",
    "entities:",
    "- table: account",
    "  entity: Account",
    "  match_keys: [account_number]",
    "  fields:",
    "  - {column: name, field: name, type: string}",
    "  - {column: accountnumber, field: account_number, type: string}",
]


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """An active synapse (client credentials, default mapping published as version 1)."""
    app = server.emulator.default_app
    assert app is not None
    cli = Cli(tmp_path_factory.mktemp("mapping") / "home")
    cli.run(
        "synapse",
        "add",
        "dynamics",
        "--name",
        "Dyn",
        "--endpoint-url",
        server.authority,
        "--org-url",
        server.org_url,
        "--emulator-ca",
        server.ca_path,
    )
    cli.run(
        "synapse",
        "auth",
        "--client-id",
        app.client_id,
        "--client-secret",
        app.client_secret,
        "--client-credentials",
    )
    cli.run("synapse", "activate", "--default-mapping", "--table", "account", "--table", "contact")
    return cli


@pytest.fixture
def draft(cli: Cli) -> Iterator[Path]:
    path = cli.home / "mappings" / "dyn.yaml"
    original = path.read_text()
    yield path
    path.write_text(original)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _problems(cli: Cli, *command: str) -> list[dict[str, str]]:
    data = cli.json(*command, expect=2)
    assert data["error"] == "MappingValidationError" and data["exit_code"] == 2
    problems: list[dict[str, str]] = data["problems"]
    return problems


def test_yaml_syntax_error_names_line_and_column(cli: Cli, draft: Path) -> None:
    lines = list(GOOD_ACCOUNT)
    lines[4] = "  entity: Account: Customer"  # line 5: a second colon where YAML expects a plain value
    _write(draft, lines)
    error = one_paragraph_error(cli.run("mapping", "validate", expect=2))
    assert f"{draft}:5:18: YAML syntax error: mapping values are not allowed here" in error
    assert "Fix the listed lines and publish again." in error


def test_shape_errors_are_all_listed(cli: Cli, draft: Path) -> None:
    _write(
        draft,
        [
            *GOOD_ACCOUNT[:6],
            "  colour: red",  # line 7: unknown key
            "  fields:",
            "  - {column: name, field: name, type: strng}",  # line 9: unknown type
            "  - {column: telephone1, field: phone, type: string, direction: sideways}",  # line 10
        ],
    )
    problems = _problems(cli, "mapping", "validate")
    assert [p["location"] for p in problems] == [f"{draft}:7", f"{draft}:9", f"{draft}:10"]
    assert "unknown key 'colour'" in problems[0]["message"]
    assert "'string'" in problems[1]["message"]  # the allowed types are listed
    assert "'to_udm', 'from_udm' or 'both'" in problems[2]["message"]


def test_schema_errors_are_all_listed(cli: Cli, draft: Path) -> None:
    _write(
        draft,
        [
            *GOOD_ACCOUNT,
            "  - {column: revenu, field: revenue, type: decimal}",  # line 10: no such column
            "  - {column: name, field: name2, type: integer}",  # line 11: a string column typed integer
            "- table: contact",
            "  entity: Contact",
            "  match_keys: [emal]",  # line 14: match key that is no field
            "  fields:",
            "  - {column: emailaddress1, field: email, type: string}",
        ],
    )
    problems = _problems(cli, "mapping", "validate")
    locations = [p["location"] for p in problems]
    assert {f"{draft}:10", f"{draft}:11", f"{draft}:14"} <= set(locations), problems
    assert locations == sorted(locations, key=lambda loc: int(loc.rsplit(":", 1)[1]))  # file order
    text = cli.run("mapping", "validate", expect=2).stderr
    assert "did you mean 'revenue'?" in text


def test_publish_refuses_a_broken_draft_and_keeps_the_published_version(cli: Cli, draft: Path) -> None:
    before = cli.json("mapping", "show")
    _write(draft, [*GOOD_ACCOUNT, "  - {column: revenu, field: revenue, type: decimal}"])
    problems = _problems(cli, "mapping", "publish")
    assert [p["location"] for p in problems] == [f"{draft}:10"]
    assert cli.json("mapping", "show") == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a mapping file must be a YAML mapping with 'synapse' and 'entities'"),
        ("- just\n- a list\n", "a mapping file must be a YAML mapping"),
        ("format: 2\nsynapse: dyn\nentities: []\n", "mapping format 2 is not supported"),
    ],
)
def test_not_a_mapping_file(cli: Cli, draft: Path, text: str, expected: str) -> None:
    draft.write_text(text)
    error = one_paragraph_error(cli.run("mapping", "validate", expect=2))
    assert f"{draft}:1: {expected}" in error


def test_draft_for_another_synapse(cli: Cli, draft: Path) -> None:
    _write(draft, [GOOD_ACCOUNT[0], "synapse: salesforce", *GOOD_ACCOUNT[2:]])
    error = one_paragraph_error(cli.run("mapping", "publish", expect=2))
    assert "salesforce" in error and "dyn" in error


def test_field_without_column_is_reported(cli: Cli, draft: Path) -> None:
    _write(draft, [*GOOD_ACCOUNT, "  - {field: phone, type: string}"])
    problems = _problems(cli, "mapping", "validate")
    assert [p["location"] for p in problems] == [f"{draft}:10"], problems
    assert "column" in problems[0]["message"]


def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text("import sys\npath = sys.argv[1]\n" + body)
    return f"{sys.executable} {script}"


def test_edit_then_validate(cli: Cli, draft: Path, tmp_path: Path) -> None:
    cli.env["EDITOR"] = _editor(
        tmp_path, "open(path, 'a').write('  - {column: revenu, field: revenue, type: decimal}\\n')\n"
    )
    cli.env["VISUAL"] = None
    try:
        _write(draft, GOOD_ACCOUNT)
        error = one_paragraph_error(cli.run("mapping", "edit", expect=2))
        assert f"{draft}:10: column 'revenu' does not exist on table 'account'" in error
        cli.env["EDITOR"] = _editor(tmp_path, "")  # the person closes the editor without changes
        _write(draft, GOOD_ACCOUNT)
        assert f"Valid: {draft}" in cli.run("mapping", "edit").stdout
        assert "accountnumber" in cli.run("mapping", "show", "--draft").stdout
    finally:
        cli.env["EDITOR"] = None


def test_edit_with_a_missing_editor(cli: Cli, draft: Path) -> None:
    cli.env["EDITOR"] = "/nonexistent/editor --wait"
    cli.env["VISUAL"] = None
    try:
        error = one_paragraph_error(cli.run("mapping", "edit", expect=2))
        assert "Cannot start the editor '/nonexistent/editor --wait'" in error and "$EDITOR" in error
        assert str(draft) in error
    finally:
        cli.env["EDITOR"] = None


def test_activate_with_an_unknown_table_changes_nothing(cli: Cli) -> None:
    before = cli.json("schema", "show")
    error = one_paragraph_error(
        cli.run("synapse", "activate", "--table", "acount", "--table", "contact", expect=2)
    )
    assert "Table 'acount' (did you mean 'account'?) not found in the org" in error
    assert "nothing was activated" in error and "logical table names" in error
    assert cli.json("schema", "show") == before
