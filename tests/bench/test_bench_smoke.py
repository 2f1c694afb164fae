"""Each registered benchmark's core runs at a tiny size and gets correct counts (never timings)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is a top-level package next to src/, not installed
    sys.path.insert(0, str(ROOT))

from bench import common, emulator_first_page_1m, emulator_paging, run  # noqa: E402

ROWS = 500


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("tls"))  # one CA for the module


def test_registry_lists_modules_with_run_and_limits() -> None:
    for name in run.REGISTRY:
        module = run.module(name)
        assert name == module.NAME
        assert callable(module.run) and callable(module.core)
        assert 0 < module.TIMEOUT_S <= 3600


def test_emulator_paging_core_pages_every_row_once(tls_dir: str) -> None:
    out = emulator_paging.core(ROWS, tls_dir=tls_dir)
    assert out["seeded"] == ROWS
    main = out["tls_select"]
    assert main.rows == ROWS and main.pages == 1 and len(set(main.ids)) == ROWS
    assert out["tls_all"].rows == ROWS and out["tls_all"].bytes > main.bytes  # all columns are wider
    assert out["plain_select"].rows == ROWS
    assert main.server_cpu > 0 and main.client_cpu > 0
    parts = out["breakdown"]
    assert parts["page_bytes"] > ROWS * 100
    assert all(parts[k] > 0 for k in ("handler", "transport_tls", "transport_plain", "parse"))


def test_first_page_core_follows_next_links(tmp_path: Path) -> None:
    # small pages, so a few nextLinks exist at this size
    out = emulator_first_page_1m.core(ROWS, workdir=str(tmp_path), follow=2, page=200)
    assert out["seeded"] == ROWS
    for shape in ("all", "select"):
        pages = out[shape]
        assert pages["rows"] == [200, 200, 100]
        assert pages["distinct"] == ROWS
    assert out["file_mb"] > 0
    assert out["memory"]["peak"] >= out["memory"]["rss"] > 0


def test_results_file_keeps_latest_and_previous_headline(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    first = common.Result("emulator_paging", "t")
    first.add("rows/s", 100.0, "rows/s", at_least=200)
    run.write_doc([first], path=doc)
    other = common.Result("emulator_first_page_1m", "t2")
    other.add("first page", 0.5, "s", at_most=1)
    run.write_doc([other], path=doc)
    second = common.Result("emulator_paging", "t", date="later")
    second.add("rows/s", 300.0, "rows/s", at_least=200)
    run.write_doc([second], path=doc)
    text = doc.read_text()
    kept = run.previous_results(text)
    assert set(kept) == {"emulator_paging", "emulator_first_page_1m"}
    assert kept["emulator_paging"].passed is True and kept["emulator_first_page_1m"].passed is True
    assert "| rows/s | 300 rows/s | >= 200 | **pass** |" in text
    assert "Previous run:" in text and "**FAIL**: rows/s 100 rows/s" in text
