"""The dynasync home: synapse configurations on disk, secrets encrypted at rest, private file modes, names."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dynasync import setup
from dynasync.config import Settings
from dynasync.errors import ConfigError
from dynasync.names import slug
from dynasync.secrets import Secret, SecretsError, load_secret_box
from dynasync.workspace import SynapseNotFoundError, SynapseRecord, Workspace

SECRET = "Xy7Q~super.secret-value_1234567890abcdefgh"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
ENDPOINT = "https://login.microsoftonline.com/contoso.onmicrosoft.com"
ORG = "https://contoso.crm.dynamics.com"


def _workspace(home: Path, **settings: object) -> Workspace:
    return Workspace(Settings(home=home, **settings))  # type: ignore[arg-type]


def _configured(ws: Workspace, name: str = "Dynamics Sales") -> SynapseRecord:
    record = setup.add_dynamics(ws, name=name, endpoint_url=ENDPOINT, org_url=ORG)
    setup.set_credentials(ws, record, client_id=CLIENT_ID, client_secret=SECRET)
    return ws.get(name)


def test_client_secret_is_encrypted_at_rest(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    record = _configured(ws)
    files = [p for p in ws.home.rglob("*") if p.is_file()]
    assert files, "the configuration was written"
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    stored = json.loads((ws.home / "synapses" / "dynamics_sales.json").read_text())
    assert stored["client_secret"].startswith("dsx1.")
    assert ws.secret(record).reveal() == SECRET


def test_files_and_directories_are_private(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    record = _configured(ws)
    ws.save_schema(record, [{"name": "account"}])
    for path in ws.home.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_file():
            assert mode == 0o600, (path, oct(mode))
        else:
            assert mode & 0o077 == 0, (path, oct(mode))
    assert stat.S_IMODE(ws.home.stat().st_mode) & 0o077 == 0
    assert not list(ws.home.rglob("*.tmp")), "atomic writes leave no temporary files"


def test_reprs_hide_the_secret(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    record = _configured(ws)
    for text in (
        repr(record),
        str(record),
        repr(ws.secret(record)),
        str(ws.secret(record)),
        f"{ws.secret(record)}",
    ):
        assert SECRET not in text
        assert record.client_secret not in text  # not even the ciphertext
    assert repr(ws.secret(record)) == "Secret('***')"
    assert "Dynamics Sales" in repr(record)


def test_ciphertext_is_bound_to_its_synapse(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    first = _configured(ws, "First")
    second = setup.add_dynamics(ws, name="Second", endpoint_url=ENDPOINT, org_url=ORG)
    second.client_secret = first.client_secret  # copied by hand from one file into another
    with pytest.raises(SecretsError):
        ws.secret(second)


def test_another_homes_key_cannot_decrypt(tmp_path: Path) -> None:
    record = _configured(_workspace(tmp_path / "one"))
    other = _workspace(tmp_path / "two")
    other.save(record)
    with pytest.raises(SecretsError) as caught:
        other.secret(other.get(record.name))
    assert "which is not in the key file" in caught.value.message
    assert "re-enter the secret" in (caught.value.remedy or "")


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    _configured(ws)
    key = ws.home / "secret.key"
    key.chmod(0o644)
    with pytest.raises(SecretsError, match="can be read by other users") as caught:
        _ = _workspace(ws.home).box
    assert caught.value.remedy == f"Run: chmod 600 {key}"


def test_key_from_settings_writes_no_key_file(tmp_path: Path) -> None:
    load_secret_box(tmp_path / "key-home")  # any valid key text: here the one a key file holds
    key_text = (tmp_path / "key-home" / "secret.key").read_text().strip()
    ws = _workspace(tmp_path / "home", secret_key=key_text)
    record = _configured(ws)
    assert not (ws.home / "secret.key").exists()
    assert ws.secret(record).reveal() == SECRET
    same_key = _workspace(tmp_path / "key-home")
    assert same_key.secret(record).reveal() == SECRET


def test_settings_repr_hides_the_secret_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, secret_key="k1 c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LWlzLTMyYg")
    assert "c2VjcmV0" not in repr(settings)


def test_names_and_slugs(tmp_path: Path) -> None:
    assert slug("Dynamics Sales") == "dynamics_sales"
    assert slug("  Prod.EU-1 ") == "prod_eu_1"
    assert slug("2024 Org") == "s_2024_org"
    ws = _workspace(tmp_path / "home")
    for bad in ("", " leading space", "a/b", "x" * 65, "semi;colon"):
        with pytest.raises(ConfigError):
            ws.save(SynapseRecord(name=bad, kind="dynamics", endpoint_url=ENDPOINT, org_url=ORG))


def test_lookup_by_name(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    with pytest.raises(SynapseNotFoundError, match="No synapse is configured yet"):
        ws.only_or_named(None)
    _configured(ws, "One")
    assert ws.only_or_named(None).name == "One"
    ws.save_schema(ws.get("One"), [])  # schema snapshots are not synapses
    assert ws.synapse_names() == ["One"]
    _configured(ws, "Two")
    with pytest.raises(ConfigError, match=r"Several synapses are configured \(One, Two\)") as several:
        ws.only_or_named(None)
    assert several.value.remedy == "Name one with --synapse NAME."
    with pytest.raises(SynapseNotFoundError, match=r"'Three' is configured \(configured: One, Two\)"):
        ws.get("Three")
    ws.delete("One")
    assert ws.synapse_names() == ["Two"]
    assert not list((ws.home / "synapses").glob("one.*"))


def test_secret_missing_before_credentials(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    record = setup.add_dynamics(ws, name="Dyn", endpoint_url=ENDPOINT, org_url=ORG)
    with pytest.raises(ConfigError, match="has no client secret yet") as caught:
        ws.secret(record)
    assert "dynasync synapse auth" in (caught.value.remedy or "")


def test_set_secret_accepts_a_secret_object(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "home")
    record = setup.add_dynamics(ws, name="Dyn", endpoint_url=ENDPOINT, org_url=ORG)
    ws.set_secret(record, Secret(SECRET))
    ws.save(record)
    assert ws.secret(ws.get("Dyn")).reveal() == SECRET
