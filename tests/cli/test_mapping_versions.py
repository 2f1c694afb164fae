"""Mappings as config as code through the CLI: publish a file from a repository, list versions, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynasync.config import Settings
from dynasync.emulator.server import EmulatorServer
from dynasync.workspace import Workspace

from .helpers import Cli, one_paragraph_error, synced_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli(server: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return synced_cli(server, tmp_path_factory.mktemp("versions") / "home")


def test_publish_from_a_repository_file_then_roll_back(cli: Cli, tmp_path: Path) -> None:
    first = cli.json("mapping", "show")
    assert first["version"] == 1
    fax = next(line for line in first["yaml"].splitlines() if "column: fax," in line)
    repo_file = tmp_path / "crm-config" / "dyn.yaml"
    repo_file.parent.mkdir()
    repo_file.write_text(
        "# reviewed in PR 12: no fax\n" + first["yaml"].replace(fax + "\n", ""), encoding="utf-8"
    )

    assert cli.json("mapping", "validate", "--file", repo_file) == {"valid": True, "path": str(repo_file)}
    published = cli.json("mapping", "publish", "--file", repo_file, "-m", "from git abc123")
    assert published["version"] == 2 and "Account" in published["udm_entities"]
    draft = Path(cli.json("mapping", "validate")["path"])
    assert draft.read_text(encoding="utf-8") == repo_file.read_text(encoding="utf-8")  # comments kept
    assert "column: fax," not in cli.json("mapping", "show")["yaml"]

    history = cli.json("mapping", "history")["versions"]
    assert [(v["version"], v["summary"]) for v in history] == [(1, "default mapping"), (2, "from git abc123")]
    assert "from git abc123  (runs)" in cli.run("mapping", "history").stdout

    rolled = cli.json("mapping", "rollback", "1")
    assert rolled["version"] == 3
    assert cli.json("mapping", "show")["yaml"] == first["yaml"]
    assert cli.json("mapping", "history")["versions"][-1]["summary"] == "rollback to version 1"
    assert cli.json("sync")["ok"]  # the rolled-back mapping runs

    error = one_paragraph_error(cli.run("mapping", "rollback", "3", expect=2))
    assert "Version 3 is the published mapping" in error


def test_a_bad_repository_file_is_located_and_publishes_nothing(cli: Cli, tmp_path: Path) -> None:
    before = cli.json("mapping", "history")["versions"]
    bad = tmp_path / "dyn.yaml"
    text = cli.json("mapping", "show")["yaml"].replace("column: fax,", "column: faxx,")
    bad.write_text(text, encoding="utf-8")
    line = 1 + text.splitlines().index(next(x for x in text.splitlines() if "column: faxx," in x))
    for command in ("validate", "publish"):
        error = one_paragraph_error(cli.run("mapping", command, "--file", bad, expect=2))
        assert f"{bad}:{line}" in error and "faxx" in error
    missing = one_paragraph_error(cli.run("mapping", "publish", "--file", tmp_path / "nope.yaml", expect=2))
    assert "nope.yaml" in missing
    assert cli.json("mapping", "history")["versions"] == before


def test_activation_with_the_default_mapping_never_replaces_a_mapping_of_its_own(
    cli: Cli, tmp_path: Path
) -> None:
    versions = cli.json("mapping", "history")["versions"]  # the last one is the default mapping's text again
    again = cli.json("synapse", "activate", "--default-mapping")
    assert again["mapping_version"] is None and cli.json("mapping", "history")["versions"] == versions

    default_file = tmp_path / "default.yaml"
    default_file.write_text(cli.run("mapping", "show", "--default").stdout, encoding="utf-8")
    assert cli.json("mapping", "validate", "--file", default_file)["valid"]  # shows what publishes as is
    own = tmp_path / "own.yaml"
    lines = default_file.read_text(encoding="utf-8").splitlines(keepends=True)
    own.write_text("".join(x for x in lines if "column: fax," not in x), encoding="utf-8")
    mine = cli.json("mapping", "publish", "--file", own, "-m", "no fax anywhere")["version"]
    error = one_paragraph_error(cli.run("synapse", "activate", "--default-mapping", expect=2))
    assert f"runs its own mapping (version {mine}); --default-mapping would replace it" in error
    assert "mapping publish --file default.yaml" in error
    assert cli.json("mapping", "history")["versions"][-1]["version"] == mine
    assert cli.json("synapse", "activate")["mapping_version"] is None  # keeps it


def test_a_mapping_that_changes_a_udm_field_type_is_refused_before_it_is_published(
    cli: Cli, tmp_path: Path
) -> None:
    before = cli.json("mapping", "history", "--synapse", "Dyn")["versions"]
    text = cli.json("mapping", "show", "--synapse", "Dyn")["yaml"]
    retyped = text.replace("field: description, type: text", "field: description, type: string", 1)
    assert retyped != text
    path = tmp_path / "dyn.yaml"
    path.write_text(retyped, encoding="utf-8")
    line = 1 + retyped.splitlines().index(
        next(x for x in retyped.splitlines() if "field: description, type: string" in x)
    )
    for command in ("validate", "publish"):
        error = one_paragraph_error(cli.run("mapping", command, "--synapse", "Dyn", "--file", path, expect=2))
        assert (
            f"{path}:{line}: UDM field 'Account.description' would be string, but it is text in the UDM table of Account"
            in error
        )
    assert cli.json("mapping", "history", "--synapse", "Dyn")["versions"] == before
    assert cli.json("sync", "--synapse", "Dyn")["ok"]  # still runs


def test_synapse_wins_must_name_a_configured_synapse(
    cli: Cli, server: EmulatorServer, tmp_path: Path
) -> None:
    text = cli.json("mapping", "show")["yaml"]
    fax = next(x for x in text.splitlines() if "type: string}" in x and "conflict" not in x)
    trusting = tmp_path / "dyn.yaml"
    trusting.write_text(text.replace(fax, fax.rstrip("}") + ", conflict: {synapse_wins: ERP}}", 1))
    error = one_paragraph_error(cli.run("mapping", "publish", "--file", trusting, expect=2))
    assert "synapse_wins names 'ERP', which is no synapse here" in error and "dyn" in error

    cli.run("synapse", "add", "dynamics", "--name", "ERP", "--endpoint-url", server.authority,
            "--org-url", server.org_url, "--emulator-ca", server.ca_path)  # fmt: skip
    trusting.write_text(trusting.read_text().replace("synapse_wins: ERP", "synapse_wins: erp"))
    published = cli.json("mapping", "publish", "--synapse", "Dyn", "--file", trusting, "--discard-draft")
    assert published["version"] > 1
    # The trusted synapse goes away: syncing refuses rather than side with the UDM against every synapse.
    Workspace(Settings(home=cli.home)).delete("ERP")
    refused = one_paragraph_error(cli.run("sync", expect=2))
    assert "synapse_wins names 'erp', which is no synapse here" in refused
