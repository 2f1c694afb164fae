"""Each registered benchmark's core runs at a tiny size and gets correct counts (never timings)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is a top-level package next to src/, not installed
    sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    common,
    emulator_first_page_1m,
    emulator_paging,
    emuproc,
    run,
    sync_full_100k,
    sync_incremental_1pct,
    sync_memory_1m,
    writeback_10k,
)

ROWS = 300  # the first-page core seeds its own file-backed emulator
SYNC_ROWS = 300  # the shared emulator


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("tls"))  # one CA for the module


@pytest.fixture(scope="module")
def emulator(tls_dir: str) -> Iterator[emuproc.EmulatorProcess]:
    """One emulator child for the sync cores; each core syncs into its own new UDM store."""
    with emuproc.EmulatorProcess(accounts=SYNC_ROWS, tls_dir=tls_dir) as running:
        yield running


def test_registry_lists_modules_with_run_and_limits() -> None:
    for name in run.REGISTRY:
        module = run.module(name)
        assert name == module.NAME
        assert callable(module.run) and callable(module.core)
        assert 0 < module.TIMEOUT_S <= 3600


def test_emulator_paging_core_pages_every_row_once(tls_dir: str, emulator: emuproc.EmulatorProcess) -> None:
    out = emulator_paging.core(SYNC_ROWS, tls_dir=tls_dir, emulator=emulator)
    rows = emulator.count()
    assert out["seeded"] == rows > 0
    main = out["tls_select"]
    assert main.rows == rows and main.pages == 1 and len(set(out["tls_select_ids"])) == rows
    assert len(out["tls_select_passes"]) == 2
    assert out["tls_all"].rows == rows and out["tls_all"].bytes > main.bytes  # all columns are wider
    assert out["plain_select"].rows == rows
    assert main.client_cpu > 0 and main.server_cpu >= 0  # /proc counts CPU in 10 ms ticks
    parts = out["breakdown"]
    assert parts["page_bytes"] > rows * 100
    assert all(parts[k] > 0 for k in ("handler", "transport_tls", "transport_plain", "parse"))


def test_first_page_core_follows_next_links(tmp_path: Path) -> None:
    # small pages, so a few nextLinks exist at this size
    out = emulator_first_page_1m.core(ROWS, workdir=str(tmp_path), follow=3, page=100)
    assert out["seeded"] == ROWS
    for shape in ("all", "select"):
        pages = out[shape]
        assert pages["rows"] == [100, 100, 100]  # the 4th page would be past the end
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


def test_sync_full_core_syncs_every_account(tmp_path: Path, emulator: emuproc.EmulatorProcess) -> None:
    out = sync_full_100k.core(SYNC_ROWS, workdir=str(tmp_path), emulator=emulator)
    rows = emulator.count()
    assert out["seeded"] == out["udm_rows"] == out["bare"].rows == out["bare_plain"].rows == rows > 0
    assert out["bare"].bytes > out["bare_plain"].bytes  # the synapse asks for annotations too
    full = out["full"]
    assert full.report.ok and full.counts["created"] == rows and full.counts["full_load"]
    assert full.requests == 1  # one page
    assert out["columns"] >= out["mapped_fields"] > 30  # the read selects at least the mapped columns


def test_sync_memory_core_runs_the_sync_in_a_child(tmp_path: Path, emulator: emuproc.EmulatorProcess) -> None:
    out = sync_memory_1m.core(SYNC_ROWS, workdir=str(tmp_path), timeout=60, emulator=emulator)
    assert out["ok"] and out["created"] == out["udm_rows"] == emulator.count() > 0
    assert out["peak_rss"] >= out["peak_before_sync"] > 0
    assert out["samples"]


def test_writeback_core_writes_changed_records(tmp_path: Path, emulator: emuproc.EmulatorProcess) -> None:
    out = writeback_10k.core(SYNC_ROWS, workdir=str(tmp_path), changes=150, emulator=emulator)
    assert out["changed"] == 150 and out["marked"] == 150
    counts = out["write"].counts
    assert counts["written_updated"] == 150 and counts["write_failed"] == 0
    assert out["write"].requests <= 3  # a delta read and the writes


def test_sync_incremental_core_reads_only_the_delta(
    tmp_path: Path, emulator: emuproc.EmulatorProcess
) -> None:
    before = emulator.count()
    out = sync_incremental_1pct.core(SYNC_ROWS, workdir=str(tmp_path), changed_share=0.05, emulator=emulator)
    assert out["rows"] == before and out["deleted"] >= 1 and out["updated"] >= 1
    assert sync_incremental_1pct.check(out) is None
    assert out["incremental"].requests == out["delta_pages"] == 1
    assert emulator.count() == before - out["deleted"]
