from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from dynasync.secrets import KEY_FILE_NAME, Secret, SecretBox, SecretsError, add_key, load_secret_box


def test_round_trip_and_format(tmp_path: Path) -> None:
    box = load_secret_box(tmp_path)
    token = box.encrypt("s3cr3t-value", context="conn1|client_secret")
    assert token.startswith(f"dsx1.{box.primary_key_id}.")
    assert "s3cr3t" not in token
    assert box.decrypt(token, context="conn1|client_secret") == "s3cr3t-value"
    assert box.encrypt("x") != box.encrypt("x")  # fresh nonce each time


def test_key_file_mode_and_no_plaintext(tmp_path: Path) -> None:
    home = tmp_path / "home"
    box = load_secret_box(home)
    key_file = home / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    stored = home / "conn.txt"
    stored.write_text(box.encrypt("plain-secret-123"))
    for path in home.rglob("*"):
        assert b"plain-secret-123" not in path.read_bytes()
    # Reloading the same home gives the same key.
    assert load_secret_box(home).decrypt(stored.read_text()) == "plain-secret-123"


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    load_secret_box(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(SecretsError) as info:
        load_secret_box(tmp_path)
    assert "chmod 600" in (info.value.remedy or "")


def test_context_binding_and_tamper(tmp_path: Path) -> None:
    box = load_secret_box(tmp_path)
    token = box.encrypt("v", context="a")
    with pytest.raises(SecretsError):
        box.decrypt(token, context="b")
    head, kid, blob = token.split(".")
    flipped = blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1]
    with pytest.raises(SecretsError):
        box.decrypt(".".join([head, kid, flipped]), context="a")
    with pytest.raises(SecretsError):
        box.decrypt("plaintext")


def test_rotation(tmp_path: Path) -> None:
    old_box = load_secret_box(tmp_path)
    old = old_box.encrypt("rotate-me", context="c")
    new_id = add_key(tmp_path)
    box = load_secret_box(tmp_path)
    assert box.primary_key_id == new_id
    assert box.key_ids == [old_box.primary_key_id, new_id]
    assert box.decrypt(old, context="c") == "rotate-me"
    assert box.needs_rotation(old)
    rotated = box.rotate(old, context="c")
    assert not box.needs_rotation(rotated)
    assert box.rotate(rotated, context="c") == rotated
    assert box.decrypt(rotated, context="c") == "rotate-me"
    # A box without the old key cannot read old ciphertexts, and says which key is missing.
    with pytest.raises(SecretsError) as info:
        SecretBox.generate().decrypt(old, context="c")
    assert old_box.primary_key_id in info.value.message


def test_key_material_from_caller(tmp_path: Path) -> None:
    material = tmp_path / "k"
    box = load_secret_box(tmp_path / "h1")
    material.write_text((tmp_path / "h1" / KEY_FILE_NAME).read_text())
    other = load_secret_box(tmp_path / "h2", key_material=material.read_text())
    assert other.decrypt(box.encrypt("x")) == "x"
    assert not (tmp_path / "h2").exists()  # no key file created when material is given
    bare = material.read_text().split()[1]
    assert SecretBox.from_key_material(bare).primary_key_id == "env"
    with pytest.raises(SecretsError):
        SecretBox.from_key_material("id not-base64!!")
    with pytest.raises(SecretsError):
        SecretBox.from_key_material("k1 " + "QUFB")  # 3 bytes


def test_secret_value_type_hides_itself() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s)
    assert "hunter2" not in f"{s} {s!r} {s:>10}"
    assert s.reveal() == "hunter2"
    assert s == Secret("hunter2") and s != Secret("other")
    assert "hunter2" not in repr([s, {"k": s}])
    with pytest.raises(TypeError):
        pickle.dumps(s)
    box = SecretBox.generate()
    assert box.decrypt_secret(box.encrypt(s)).reveal() == "hunter2"
    assert "hunter2" not in repr(box)
