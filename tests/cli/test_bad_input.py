"""Bad CLI input: every problem reported at once, exit code 2, one paragraph, a traceback only with --debug."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dynasync.cli.sync_cmd import parse_every
from dynasync.errors import ConfigError

from .helpers import Cli, one_paragraph_error

ENDPOINT = "https://login.microsoftonline.com/contoso.onmicrosoft.com"
ORG = "https://contoso.crm.dynamics.com"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def _add(cli: Cli, *, name: str = "Dyn", endpoint: str = ENDPOINT, org: str = ORG, expect: int = 0) -> str:
    result = cli.run(
        "synapse",
        "add",
        "dynamics",
        "--name",
        name,
        "--endpoint-url",
        endpoint,
        "--org-url",
        org,
        expect=expect,
    )
    return one_paragraph_error(result) if expect else result.stdout


@pytest.mark.parametrize(
    ("org_url", "expected"),
    [
        ("http://contoso.crm.dynamics.com", "must start with https://"),
        ("https://10.1.2.3", "not the IP address '10.1.2.3'"),
        ("https://[2001:db8::1]", "not the IP address"),
        ("https://example.com", "'example.com' is not a Dataverse environment host"),
        ("https://contoso.crm.dynamics.com.evil.example", "is not a Dataverse environment host"),
    ],
)
def test_invalid_org_url(cli: Cli, org_url: str, expected: str) -> None:
    error = _add(cli, org=org_url, expect=2)
    assert "org_url:" in error and expected in error
    assert "example: https://contoso.crm.dynamics.com" in error  # a right value to copy
    assert "Correct each field listed" in error
    assert cli.json("synapse", "list") == {"synapses": []}  # nothing saved


def test_every_wrong_field_is_reported_at_once(cli: Cli) -> None:
    error = _add(
        cli, name="Bad/[name]", endpoint="https://evil.example.com/x", org="http://10.0.0.1:99/x", expect=2
    )
    assert "3 problems" in error
    for name in ("name:", "org_url:", "endpoint_url:"):
        assert name in error
    data = cli.json(
        "synapse",
        "add",
        "dynamics",
        "--name",
        "Bad/[name]",
        "--endpoint-url",
        "https://evil.example.com/x",
        "--org-url",
        "http://10.0.0.1:99/x",
        expect=2,
    )
    assert data["error"] == "DynamicsConfigError" and data["exit_code"] == 2
    assert sorted(p["field"] for p in data["problems"]) == ["endpoint_url", "name", "org_url"]
    assert all(p["problem"] and p["example"] for p in data["problems"])


def test_add_twice_needs_replace(cli: Cli) -> None:
    _add(cli)
    error = _add(cli, expect=2)
    assert "A synapse named 'Dyn' already exists" in error and "--replace" in error
    _add(cli, name="Sales EU")
    clash = _add(cli, name="Sales-EU", expect=2)
    assert "Synapse 'Sales EU' (the same key, 'sales_eu', as 'Sales-EU') already exists" in clash
    cli.run(
        "synapse",
        "add",
        "dynamics",
        "--name",
        "Dyn",
        "--endpoint-url",
        ENDPOINT,
        "--org-url",
        ORG,
        "--replace",
    )


def test_unknown_synapse_name(cli: Cli) -> None:
    _add(cli)
    for args in (
        ("synapse", "test", "--synapse", "Nope"),
        ("synapse", "auth", "--synapse", "Nope", "--client-credentials"),
        ("synapse", "activate", "--synapse", "Nope"),
        ("schema", "show", "--synapse", "Nope"),
        ("mapping", "validate", "--synapse", "Nope"),
        ("sync", "--synapse", "Nope"),
    ):
        error = one_paragraph_error(cli.run(*args, expect=2))
        assert "No synapse named 'Nope' is configured (configured: Dyn)." in error, args
        assert "dynasync synapse add dynamics" in error


def test_no_synapse_yet(cli: Cli) -> None:
    error = one_paragraph_error(cli.run("synapse", "test", expect=2))
    assert "No synapse is configured yet." in error and "dynasync synapse add dynamics" in error
    assert "No synapses yet." in cli.run("synapse", "list").stdout
    assert "No synapses yet." in cli.run("status").stdout


def test_several_synapses_need_a_name(cli: Cli) -> None:
    _add(cli, name="One")
    _add(cli, name="Two", org="https://two.crm4.dynamics.com")
    error = one_paragraph_error(cli.run("synapse", "test", expect=2))
    assert "Several synapses are configured (One, Two)" in error and "--synapse NAME" in error


@pytest.mark.parametrize("every", ["nonsense", "0", "-5s", "5 days", "1.5.2m"])
def test_every_that_is_not_a_duration(cli: Cli, every: str) -> None:
    error = one_paragraph_error(cli.run("sync", "--every", every, expect=2))
    assert f"--every {every!r} is not a duration" in error and "--every 60s" in error


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("60s", 60.0), ("5m", 300.0), ("1.5h", 5400.0)])
def test_parse_every(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


def test_parse_every_refuses_zero() -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_every("0s")


def test_count_without_every(cli: Cli) -> None:
    error = one_paragraph_error(cli.run("sync", "--count", 2, expect=2))
    assert "--count only applies with --every" in error


def test_sync_before_activation(cli: Cli) -> None:
    error = one_paragraph_error(cli.run("sync", expect=2))
    assert "No active synapse to sync" in error and "dynasync synapse activate --default-mapping" in error
    _add(cli)
    error = one_paragraph_error(cli.run("sync", expect=2))
    assert "No active synapse to sync" in error
    error = one_paragraph_error(cli.run("sync", "--synapse", "Dyn", expect=2))
    assert "Synapse 'Dyn' is configured, not active" in error and "dynasync synapse activate" in error
    assert cli.run("sync", "--json", expect=None).exit_code == 2  # `--json` belongs before the command
    data = cli.json("sync", expect=2)
    assert data["error"] == "ConfigError" and "activate" in data["remedy"]


def test_steps_out_of_order(cli: Cli) -> None:
    _add(cli)
    error = one_paragraph_error(cli.run("synapse", "activate", expect=2))
    assert "no client secret yet" in error and "dynasync synapse auth" in error
    for args in (
        ("schema", "show"),
        ("schema", "refresh"),
        ("mapping", "show", "--default"),
        ("mapping", "validate"),
    ):
        error = one_paragraph_error(cli.run(*args, expect=2))
        assert "has no schema yet" in error and "dynasync synapse activate" in error, args
    error = one_paragraph_error(cli.run("mapping", "show", expect=2))
    assert "has no published mapping" in error


def test_invalid_client_id_is_refused_before_anything_is_sent(cli: Cli) -> None:
    _add(cli)
    error = one_paragraph_error(
        cli.run(
            "synapse",
            "auth",
            "--client-id",
            "not-a-guid",
            "--client-secret",
            "s",
            "--client-credentials",
            expect=2,
        )
    )
    assert "client_id: must be the Application (client) ID, a GUID" in error
    (record,) = cli.json("synapse", "list")["synapses"]
    assert record["auth"] == "" and record["status"] == "configured"


def test_debug_shows_the_traceback_and_keeps_the_exit_code(cli: Cli) -> None:
    result = cli.run("--debug", "synapse", "test", "--synapse", "Nope", expect=2)
    assert "Traceback (most recent call last)" in result.stderr
    assert "SynapseNotFoundError" in result.stderr
    assert "Error: No synapse named 'Nope'" in result.stderr
    plain = cli.run("synapse", "test", "--synapse", "Nope", expect=2)
    assert "Traceback" not in plain.stderr


def test_usage_errors_come_from_the_parser(cli: Cli) -> None:
    result = cli.run("synapse", "add", "dynamics", "--name", "X", expect=2)
    assert "Missing option" in result.output
    result = cli.run("sync", "--bogus", expect=2)
    assert "No such option" in result.output


def test_home_option_overrides_the_environment(cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    other = tmp_path / "other-home"
    assert cli.json("--home", other, "synapse", "list") == {"synapses": []}
    assert [s["name"] for s in cli.json("synapse", "list")["synapses"]] == ["Dyn"]


def test_home_that_is_a_file(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a directory")
    cli.env["DYNASYNC_HOME"] = str(home)
    error = _add(cli, expect=2)
    assert f"The dynasync home {home} is not a directory" in error and "--home" in error


def test_user_text_is_not_taken_as_terminal_markup(cli: Cli) -> None:
    _add(cli)
    error = one_paragraph_error(cli.run("synapse", "test", "--synapse", "[bold]x[/bold]", expect=2))
    assert "No synapse named '[bold]x[/bold]'" in error


def test_unknown_entity_in_log_and_unsynced_record(cli: Cli) -> None:
    error = one_paragraph_error(cli.run("log", "0f8fad5b-d9cb-469f-a165-70867728950e", expect=2))
    assert "No UDM record and no synced source record" in error


def test_json_error_shape(cli: Cli) -> None:
    result = cli.run("--json", "synapse", "test", expect=2)
    data = json.loads(result.stdout)
    assert set(data) == {"error", "message", "remedy", "exit_code"}
    assert result.stderr == ""


def test_key_file_readable_by_others(cli: Cli) -> None:
    from dynasync.secrets import load_secret_box

    _add(cli)
    load_secret_box(cli.home)
    (cli.home / "secret.key").chmod(0o644)
    result = cli.run(
        "synapse",
        "auth",
        "--client-id",
        "11111111-2222-3333-4444-555555555555",
        "--client-secret",
        "value",
        "--client-credentials",
        expect=2,
    )
    error = one_paragraph_error(result)
    assert (
        "can be read by other users (mode 0644)" in error and f"chmod 600 {cli.home / 'secret.key'}" in error
    )


def test_emulator_ca_prints_the_bundle_path(cli: Cli) -> None:
    path = Path(cli.run("emulator", "ca").stdout.strip())
    assert path.is_file() and path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert path.is_relative_to(cli.home)
    assert cli.json("emulator", "ca") == {"ca_bundle": str(path)}


def test_a_local_org_url_without_the_emulator_ca_says_which_option_allows_it(cli: Cli) -> None:
    error = _add(cli, endpoint="https://127.0.0.1:8443/contoso.onmicrosoft.com", org="https://127.0.0.1:8443",
                 expect=2)  # fmt: skip
    assert "'127.0.0.1' is a local address" in error and "--emulator-ca" in error
    assert "dynasync emulator ca" in error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none", "cannot be opened: connection failed"),
        ("foo", "invalid UDM store URL"),
        ("mysql://x/y", "unsupported UDM store database 'mysql'"),
    ],
)
def test_an_unusable_udm_url_is_a_configuration_error(cli: Cli, url: str, expected: str) -> None:
    error = one_paragraph_error(cli.run("--udm-url", url, "status", expect=2))
    assert expected in error and "This is a bug" not in error and "s3cret" not in error


def test_the_emulator_on_a_port_in_use_says_so(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = one_paragraph_error(cli.run("emulator", "serve", "--memory", "--port", port, expect=2))
    assert f"Port {port} on 127.0.0.1 is in use" in error and "--port 0" in error
