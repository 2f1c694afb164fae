"""The whole setup guide through the CLI against the emulator: add, auth, test, activate, schema, mapping, sync.

Each step is a module fixture that depends on the step before, so any single test can run alone and the
order of the guide is kept (Step 2 add, Step 3 credentials + redirect URL, Step 4 register it, Step 5 sign in,
Step 6 activate, then the Sync Studio mapping and syncs).
"""

from __future__ import annotations

import json
import re
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import Result

from dynasync.emulator.server import EmulatorServer

from .conftest import SEED
from .helpers import Cli, SignInBrowser, one_paragraph_error

pytestmark = pytest.mark.e2e

NAME = "Dynamics Sales"
SLUG = "dynamics_sales"


@dataclass
class Guide:
    """What the Azure administrator set up, and the CLI of the person following the guide."""

    server: EmulatorServer
    cli: Cli
    client_id: str
    client_secret: str

    @property
    def redirect_url(self) -> str:
        return f"{self.cli.public_base_url}/oauth/dynamics/dynamics-sales/callback"


@pytest.fixture(scope="module")
def guide(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Guide:
    # The administrator's part: app registration with a secret, consent and an application user, but the
    # redirect URL not added yet (Step 4 comes after the CLI generates it).
    registered = server.emulator.register_app("Syncari Integration", redirect_uris=())
    server.emulator.identity.auto_approve = True
    cli = Cli(tmp_path_factory.mktemp("guide") / "home")
    return Guide(server, cli, registered["client_id"], registered["client_secret"])


@pytest.fixture(scope="module")
def added(guide: Guide) -> Result:
    assert guide.server.ca_path is not None
    return guide.cli.run(
        "synapse",
        "add",
        "dynamics",
        "--name",
        NAME,
        "--endpoint-url",
        guide.server.authority,
        "--org-url",
        guide.server.org_url,
        "--emulator-ca",
        guide.server.ca_path,
    )


@pytest.fixture(scope="module")
def first_auth(guide: Guide, added: Result, browser: SignInBrowser) -> Result:
    """Steps 3 and 5 before Step 4: the redirect URL is printed, the sign-in is refused (not registered yet)."""
    opened = len(browser.opened)
    result = guide.cli.run(
        "synapse",
        "auth",
        "--client-id",
        guide.client_id,
        "--client-secret",
        guide.client_secret,
        "--timeout",
        20,
        expect=2,
    )
    assert len(browser.opened) == opened, "no browser may open for a sign-in Entra refuses up front"
    return result


@pytest.fixture(scope="module")
def signed_in(guide: Guide, first_auth: Result, browser: SignInBrowser) -> Result:
    """Step 4 (register the URL the CLI printed), then Step 5 again: the browser sign-in comes back."""
    printed = re.search(r"OAuth Redirect URL.*?\n\s+(\S+)", first_auth.stdout)
    assert printed is not None, first_auth.stdout
    registration = guide.server.emulator.directory.app(guide.client_id)
    assert registration is not None
    registration.redirect_uris.append(printed.group(1))
    guide.server.emulator.identity.notify_directory_changed()
    browser.errors.clear()
    result = guide.cli.run("synapse", "auth", "--timeout", 20)
    assert not browser.errors, browser.errors
    return result


@pytest.fixture(scope="module")
def app_only(guide: Guide, signed_in: Result) -> Result:
    return guide.cli.run("synapse", "auth", "--client-credentials")


@pytest.fixture(scope="module")
def activated(guide: Guide, app_only: Result) -> Result:
    return guide.cli.run("synapse", "activate", "--default-mapping")


@pytest.fixture(scope="module")
def drift(guide: Guide, activated: Result) -> dict[str, Any]:
    """A custom column added through the emulator's control plane, then `schema refresh` (JSON)."""
    ca = guide.server.ca_path
    assert ca is not None
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False) as http:
        response = http.post(
            f"{guide.server.base_url}/_emulator/tables/account/columns",
            json={
                "logical_name": "new_tier",
                "type": "Picklist",
                "display_name": "Tier",
                "options": [[1, "Gold"], [2, "Silver"]],
            },
        )
        assert response.status_code < 300, response.text
    return dict(guide.cli.json("schema", "refresh"))


@pytest.fixture(scope="module")
def published(guide: Guide, drift: dict[str, Any]) -> dict[str, Any]:
    """Sync Studio as code: map the new column in the draft, validate, publish version 2."""
    shown = guide.cli.json("mapping", "show")
    spec = yaml.safe_load(shown["yaml"])
    account = next(e for e in spec["entities"] if e["table"] == "account")
    account["fields"].append(
        {"column": "new_tier", "field": "tier", "type": "choice", "options": {1: "Gold", 2: "Silver"}}
    )
    draft = guide.cli.home / "mappings" / f"{SLUG}.yaml"
    draft.write_text(yaml.safe_dump(spec, sort_keys=False))
    guide.cli.run("mapping", "validate")
    return dict(guide.cli.json("mapping", "publish", "-m", "map the new tier column"))


@pytest.fixture(scope="module")
def full_sync(guide: Guide, published: dict[str, Any]) -> Result:
    return guide.cli.run("sync")


@pytest.fixture(scope="module")
def edited_account(guide: Guide, full_sync: Result) -> str:
    """A Dynamics user edits one account (phone and the new tier); the next sync (JSON) picks it up."""
    emulator = guide.server.emulator
    row = emulator.store.query("account", limit=1)[0]
    account_id = str(row["accountid"])
    emulator.user_update("accounts", account_id, {"telephone1": "+1 555 0199", "new_tier": 1})
    return account_id


@pytest.fixture(scope="module")
def incremental(guide: Guide, edited_account: str) -> dict[str, Any]:
    return dict(guide.cli.json("sync"))


def _files_under(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


# -- Step 2 ---------------------------------------------------------------------------------------------------


def test_add_dynamics_saves_the_synapse(guide: Guide, added: Result) -> None:
    assert f"Saved synapse {NAME} ({guide.server.org_url})" in added.stdout
    assert "dynasync synapse auth" in added.stdout
    (record,) = guide.cli.json("synapse", "list")["synapses"]
    assert (record["name"], record["kind"], record["org_url"]) == (NAME, "dynamics", guide.server.org_url)


# -- Steps 3-5 ------------------------------------------------------------------------------------------------


def test_auth_prints_the_redirect_url_and_names_the_missing_registration(
    guide: Guide, first_auth: Result
) -> None:
    assert guide.redirect_url in first_auth.stdout
    error = one_paragraph_error(first_auth)
    assert "AADSTS50011" in error
    # The remedy says exactly what to do in Azure (Step 4) with the exact URL.
    assert "Authentication" in error and "Redirect URIs" in error and guide.redirect_url in error


def test_interactive_sign_in_opens_the_printed_url_and_receives_the_callback(
    guide: Guide, signed_in: Result, browser: SignInBrowser
) -> None:
    printed = re.search(r"Sign in with Microsoft.*?\n\s+(\S+)", signed_in.stdout)
    assert printed is not None, signed_in.stdout
    assert browser.opened[-1] == printed.group(1)
    assert printed.group(1).startswith(f"{guide.server.authority}/oauth2/v2.0/authorize?")
    assert "Signed in" in browser.final_pages[-1]  # the listener's page the browser ends on
    assert "Authenticated." in signed_in.stdout and "System Administrator" in signed_in.stdout
    record = guide.cli.json("synapse", "list")["synapses"][0]
    assert (record["status"], record["auth"]) == ("authenticated", "auth_code")


def test_synapse_test_after_sign_in(guide: Guide, signed_in: Result) -> None:
    result = guide.cli.run("synapse", "test")
    assert result.stdout.startswith("OK Connected to")
    data = guide.cli.json("synapse", "test")
    assert data["ok"] is True and data["synapse"] == NAME and uuid.UUID(data["user_id"])


def test_client_credentials_authenticates_as_the_application_user(guide: Guide, app_only: Result) -> None:
    assert "Authenticated." in app_only.stdout
    assert "# Syncari Integration" in app_only.stdout  # the application user created for the app
    assert "OAuth Redirect URL" not in app_only.stdout  # credentials were not re-entered
    record = guide.cli.json("synapse", "list")["synapses"][0]
    assert record["auth"] == "client_credentials"


def test_no_plaintext_secret_or_token_in_the_home(guide: Guide, signed_in: Result) -> None:
    files = _files_under(guide.cli.home)
    assert any(p.name.endswith(".tokens") for p in files), "the sign-in keeps an (encrypted) token cache"
    assert guide.cli.home.stat().st_mode & 0o077 == 0, "the home directory is private"
    for path in files:
        data = path.read_bytes()
        assert guide.client_secret.encode() not in data, path
        assert b"eyJ0eXAi" not in data and b"eyJhbGci" not in data, f"a JWT in plain text in {path}"
        if path.suffix in (".json", ".tokens", ".key"):
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


# -- Step 6 ---------------------------------------------------------------------------------------------------


def test_activate_with_default_mapping(guide: Guide, activated: Result) -> None:
    out = activated.stdout
    assert f"Synapse {NAME} is active." in out
    assert "Default mapping published as version 1." in out
    assert "UDM entities: Account, Contact, Lead, Opportunity, User" in out
    assert "change tracking" in out  # the untracked tables are named with the guide's remedy
    assert guide.cli.json("synapse", "list")["synapses"][0]["status"] == "active"


def test_schema_show_lists_the_replicated_tables(guide: Guide, activated: Result) -> None:
    result = guide.cli.run("schema", "show")
    assert re.search(r"^account\s+\d+ columns$", result.stdout, re.M)
    assert re.search(r"^organization\s+\d+ columns\s+\(change tracking OFF\)$", result.stdout, re.M)
    tables = {t["table"]: t for t in guide.cli.json("schema", "show")["tables"]}
    assert {"account", "contact", "lead", "opportunity", "systemuser"} <= set(tables)
    assert tables["account"]["change_tracking"] is True and tables["account"]["collection"] == "accounts"


def test_schema_show_one_table(guide: Guide, activated: Result) -> None:
    result = guide.cli.run("schema", "show", "account")
    assert result.stdout.startswith("account (accounts), primary id accountid, change tracking on")
    assert re.search(r"^\s+parentaccountid\s+lookup\s+-> account$", result.stdout, re.M)
    assert re.search(
        r"^\s+industrycode\s+choice\s+options 1=Accounting, .*\(\+\d+ more\)$", result.stdout, re.M
    )
    table = guide.cli.json("schema", "show", "account")["table"]
    assert table["name"] == "account"


def test_schema_show_unknown_table(guide: Guide, activated: Result) -> None:
    error = one_paragraph_error(guide.cli.run("schema", "show", "acount", expect=2))
    assert "'acount' is not in the replicated schema" in error and "account, " in error


def test_schema_refresh_reports_the_new_column(guide: Guide, drift: dict[str, Any]) -> None:
    changes = drift["drift"]
    assert changes["added_tables"] == [] and changes["removed_tables"] == []
    account = next(t for t in changes["tables"] if t["table"] == "account")
    assert "new_tier" in account["added_columns"]
    assert changes["breaking"] == []
    # The snapshot was kept: the column is now part of the replicated schema, and a second refresh is quiet.
    assert "new_tier" in guide.cli.run("schema", "show", "account").stdout
    assert "No schema changes." in guide.cli.run("schema", "refresh").stdout


# -- Sync Studio mapping --------------------------------------------------------------------------------------


def test_mapping_show_prints_the_published_yaml(guide: Guide, activated: Result) -> None:
    text = guide.cli.run("mapping", "show").stdout
    spec = yaml.safe_load(text)
    assert spec["synapse"] == SLUG
    assert {e["table"]: e["entity"] for e in spec["entities"]}["account"] == "Account"
    data = guide.cli.json("mapping", "show")
    assert data["which"] == "published" and data["version"] >= 1


def test_mapping_validate_reports_every_problem_with_file_and_line(guide: Guide, activated: Result) -> None:
    draft = guide.cli.home / "mappings" / f"{SLUG}.yaml"
    original = draft.read_text()
    broken = "\n".join(
        [
            "format: 1",
            f"synapse: {SLUG}",
            "entities:",
            "- table: account",
            "  entity: Account",
            "  match_keys: [account_number]",
            "  fields:",
            "  - {column: name, field: name, type: string}",
            "  - {column: accountnumber, field: account_number, type: string}",
            "  - {column: revenu, field: revenue, type: decimal}",  # line 10: no such column
            "  - {column: telephone1, field: phone, type: reference, reference: Contact}",  # 11: not a lookup
            "- table: acount",  # line 12: no such table
            "  entity: Other",
            "  fields:",
            "  - {column: name, field: name, type: string}",
            "",
        ]
    )
    try:
        draft.write_text(broken)
        result = guide.cli.run("mapping", "validate", expect=2)
        text = result.stderr
        assert text.startswith("Error: 3 problems in the mapping:"), text
        for line in (10, 11, 12):
            assert f"\n{draft}:{line}: " in text, (line, text)
        assert "did you mean 'revenue'" in text
        data = guide.cli.json("mapping", "validate", expect=2)
        assert data["error"] == "MappingValidationError" and data["exit_code"] == 2
        assert [p["location"] for p in data["problems"]] == [f"{draft}:10", f"{draft}:11", f"{draft}:12"]
        assert all(p["message"] for p in data["problems"])
    finally:
        draft.write_text(original)


def test_mapping_publish_new_version(guide: Guide, published: dict[str, Any]) -> None:
    assert published["version"] == 2
    assert "Account" in published["udm_entities"]
    shown = guide.cli.json("mapping", "show")
    assert shown["version"] == 2 and "new_tier" in shown["yaml"]


# -- Sync -----------------------------------------------------------------------------------------------------


def test_sync_prints_the_summary_table(guide: Guide, full_sync: Result) -> None:
    out = full_sync.stdout
    header = next(line for line in out.splitlines() if "entity" in line and "synapse" in line)
    for column in ("created", "updated", "deleted", "skipped", "written back", "requests", "throttled"):
        assert column in header, header
    account = next(line for line in out.splitlines() if re.match(r"^\W*Account\W", line))
    cells = [c.strip() for c in re.split(r"[│┃|]", account) if c.strip()]
    assert cells[:3] == ["Account", SLUG, str(SEED["accounts"])], cells  # created = the seeded rows
    assert re.search(
        r"^OK \d+ UDM changes, 0 written back, 0 failed, 0 pending; \d+ requests, 0 throttled\.$", out, re.M
    )
    assert not re.search(r"\d records", out), "no progress bars when the output is not a terminal"


def test_sync_json_is_one_parseable_object(guide: Guide, incremental: dict[str, Any]) -> None:
    assert incremental["ok"] is True
    counts = incremental["entities"]["Account"]["synapses"][SLUG]
    assert counts["updated"] == 1 and counts["created"] == 0 and counts["deleted"] == 0
    assert counts["full_load"] is False
    assert incremental["totals"]["failed"] == 0


def test_status_after_sync(guide: Guide, incremental: dict[str, Any]) -> None:
    data = guide.cli.json("status")
    synapse = data["synapses"][0]
    assert (synapse["name"], synapse["status"], synapse["auth"]) == (NAME, "active", "client_credentials")
    streams = {s["stream"]: s for s in synapse["streams"]}
    assert {"account", "contact", "systemuser"} <= set(streams)
    assert all(s["updated_at"] for s in streams.values())
    assert data["udm_counts"]["Account"] == SEED["accounts"]
    assert data["runs"][0]["run_id"] == incremental["run_id"]
    text = guide.cli.run("status").stdout
    assert f"{NAME} {guide.server.org_url} [active, client_credentials]" in text
    assert f"Account {SEED['accounts']}" in text


def test_status_records_the_end_of_each_stream_run(guide: Guide, incremental: dict[str, Any]) -> None:
    streams = guide.cli.json("status")["synapses"][0]["streams"]
    assert all(s["last_run_end"] for s in streams)


def _account_udm_id(guide: Guide, account_id: str) -> str:
    data = guide.cli.json("log", account_id)
    return str(data["udm_id"])


def test_log_by_dynamics_id_shows_the_field_changes(
    guide: Guide, edited_account: str, incremental: dict[str, Any]
) -> None:
    data = guide.cli.json("log", edited_account)
    assert data["entity"] == "Account"
    assert {"synapse": SLUG, "table": "account", "external_id": edited_account} in data["links"]
    newest = next(e for e in data["events"] if e["run_id"] == incremental["run_id"])
    assert (newest["direction"], newest["action"]) == ("in", "updated")
    fields = {f["field"]: f for f in newest["fields"]}
    assert fields["phone"]["new"] == "+1 555 0199" and fields["phone"]["old"] != "+1 555 0199"
    assert fields["tier"]["new"] == "Gold"
    assert data["events"][-1]["action"] == "created"
    text = guide.cli.run("log", "{" + edited_account.upper() + "}").stdout  # as Dynamics shows ids
    assert "phone: " in text and "-> '+1 555 0199'" in text


def test_log_by_udm_id_is_the_same_history(
    guide: Guide, edited_account: str, incremental: dict[str, Any]
) -> None:
    by_dynamics = guide.cli.json("log", edited_account)
    by_udm = guide.cli.json("log", by_dynamics["udm_id"])
    assert by_udm == by_dynamics
    assert guide.cli.json("log", by_dynamics["udm_id"], "--entity", "Account") == by_dynamics


def test_log_of_an_unknown_record(guide: Guide, incremental: dict[str, Any]) -> None:
    unknown = str(uuid.uuid4())
    error = one_paragraph_error(guide.cli.run("log", unknown, expect=2))
    assert unknown in error and "Dynamics record id" in error
    error = one_paragraph_error(guide.cli.run("log", unknown, "--entity", "Acount", expect=2))
    assert "no UDM entity 'Acount'" in error and "Account" in error


def test_every_json_output_is_an_object(guide: Guide, incremental: dict[str, Any]) -> None:
    for args in (("synapse", "list"), ("schema", "show"), ("status",), ("mapping", "show")):
        data = guide.cli.json(*args)
        assert isinstance(data, dict), args
    assert json.loads(guide.cli.run("--json", "synapse", "test").stdout)["ok"] is True


def test_sync_every_prints_one_json_object_per_run(guide: Guide, incremental: dict[str, Any]) -> None:
    result = guide.cli.run("--json", "sync", "--every", "0.1s", "--count", 2)
    decoder = json.JSONDecoder()
    text, runs = result.stdout.strip(), []
    while text:
        run, end = decoder.raw_decode(text)
        runs.append(run)
        text = text[end:].strip()
    assert len(runs) == 2 and runs[0]["run_id"] != runs[1]["run_id"]
    assert all(run["ok"] and run["totals"]["udm_changes"] == 0 for run in runs)
    assert "Syncing every 0.1s" in result.stderr


def test_throttling_is_counted_in_the_summary(guide: Guide, incremental: dict[str, Any]) -> None:
    guide.server.emulator.faults.inject("429", count=1, retry_after=1, path_contains="accounts")
    data = guide.cli.json("sync", "--entity", "Account")
    counts = data["entities"]["Account"]["synapses"][SLUG]
    assert counts["throttled"] == 1 and data["ok"] is True
    assert set(data["entities"]) == {"Account"}


@pytest.fixture(scope="module")
def refused_write(guide: Guide, incremental: dict[str, Any]) -> tuple[str, Result]:
    """A UDM change (made with SQL-level access, as another system would) that Dynamics refuses."""
    from dynasync.udm.store import open_store

    account_id = str(guide.server.emulator.store.query("account", limit=2)[1]["accountid"])
    with open_store(f"sqlite:///{guide.cli.home / 'udm.db'}") as store:
        link = store.get_link(SLUG, "account", account_id)
        assert link is not None
        store.upsert("Account", {"industry": "Space Tourism"}, udm_id=link.udm_id, source="udm")
    return account_id, guide.cli.run("sync", expect=1)


def test_failed_records_give_exit_code_1_and_the_reason(
    guide: Guide, refused_write: tuple[str, Result]
) -> None:
    account_id, result = refused_write
    out = result.stdout
    assert re.search(r"^FAILED \d+ UDM changes, 0 written back, 1 failed", out, re.M), out
    issue = next(line for line in out.splitlines() if "Account/" in line and " write " in line)
    assert "failed" in issue
    row = guide.server.emulator.store.get("account", uuid.UUID(account_id))
    assert row is not None and row["industrycode"] is not None
    log = guide.cli.json("log", account_id)
    assert "industry: UDM value 'Space Tourism' has no entry in the option map" in issue
    assert "FAILED" not in guide.cli.run("sync", "--entity", "Contact").stdout  # other entities still sync
    # The record's log shows the UDM change that could not be written back.
    log = guide.cli.json("log", account_id)
    change = next(e for e in log["events"] if e["direction"] == "udm")
    assert [(f["field"], f["new"]) for f in change["fields"]] == [("industry", "Space Tourism")]
    # status lists the record waiting for a retry.
    waiting = guide.cli.json("status")["synapses"][0]["quarantined"]
    assert any("Space Tourism" in q["error"] for q in waiting), waiting
    assert "failed or pending, retried on the next sync" in guide.cli.run("status").stdout
