"""Benchmark runner: ``python -m bench.run [names...]`` runs each benchmark in its own process, bounded in time,
and rewrites ``docs/benchmarks.md`` with the latest result of every benchmark."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bench.common import REPO, Metric, Result

# name -> module; each module has NAME, TITLE, TIMEOUT_S and run() -> Result.
REGISTRY: dict[str, str] = {
    "emulator_paging": "bench.emulator_paging",
    "emulator_first_page_1m": "bench.emulator_first_page_1m",
    "sync_full_100k": "bench.sync_full_100k",
    "sync_incremental_1pct": "bench.sync_incremental_1pct",
    "writeback_10k": "bench.writeback_10k",
    "sync_memory_1m": "bench.sync_memory_1m",
}
DOC = REPO / "docs" / "benchmarks.md"
_BLOCK = re.compile(r"<!-- bench-result (\{.*?\}) -->", re.S)


def module(name: str) -> ModuleType:
    """The module of a registered benchmark."""
    return importlib.import_module(REGISTRY[name])


def run_in_child(name: str) -> Result:
    """Run one benchmark in a fresh interpreter (clean memory readings), killed after its TIMEOUT_S."""
    timeout = float(module(name).TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.run", "--child", name, "--out", str(out)]
        started = time.monotonic()
        # Its own process group: on timeout the benchmark and the emulator/sync processes it started all stop.
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
        try:
            code: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = f"timed out after {timeout:.0f} s"
        except BaseException:  # Ctrl+C: the group is not in the terminal's foreground, stop it here
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        if out.exists():
            return Result.from_json(json.loads(out.read_text()))
        mod = module(name)
        elapsed = time.monotonic() - started
        return Result(name, mod.TITLE, error=f"no result ({code}) after {elapsed:.0f} s")


def child(name: str, out: Path) -> int:
    """Inside the child: run and write the result JSON (a crash becomes a failed result)."""
    mod = module(name)
    try:
        result: Result = mod.run()
    except Exception as exc:  # noqa: BLE001 - a failed benchmark is a result to report, not a crash
        import traceback

        traceback.print_exc()
        result = Result(name, mod.TITLE, error=f"{type(exc).__name__}: {exc}")
    out.write_text(json.dumps(result.to_json(), indent=1))
    return 0 if result.passed is not False else 1


# -- docs/benchmarks.md ----------------------------------------------------------------------------------------


def previous_results(text: str) -> dict[str, Result]:
    """Results embedded in an existing ``docs/benchmarks.md``."""
    found: dict[str, Result] = {}
    for match in _BLOCK.finditer(text):
        result = Result.from_json(json.loads(match.group(1)))
        found[result.name] = result
    return found


def _value(metric: Metric) -> str:
    v = metric.value
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}" if v != int(v) else f"{int(v)}"
    return f"{text} {metric.unit}".strip()


def _verdict(passed: bool | None) -> str:
    return "—" if passed is None else "**pass**" if passed else "**FAIL**"


def _headline(result: Result) -> str:
    checks = [m for m in result.metrics if m.target]
    return "; ".join(f"{m.name} {_value(m)}" for m in checks) or "no target"


def section(result: Result) -> str:
    """The markdown of one benchmark's latest result."""
    m = result.machine
    lines = [
        f"## {result.name}",
        "",
        f"{result.title}",
        "",
        f"- Date: {result.date}; machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('ram_gb')} GB RAM, "
        f"Python {m.get('python')}; load average at start {m.get('load', '?')}",
        f"- Parameters: {', '.join(f'{k}={v}' for k, v in result.params.items()) or '—'}",
        f"- Verdict: {_verdict(result.passed)}",
    ]
    if result.error:
        lines.append(f"- Error: {result.error}")
    lines += ["", "| Measure | Value | Target | Pass |", "|---|---:|---|---|"]
    for metric in result.metrics:
        lines.append(
            f"| {metric.name} | {_value(metric)} | {metric.target or ''} | {_verdict(metric.passed)} |"
        )
    if result.note:
        lines += ["", f"Note: {result.note}"]
    if result.previous:
        lines += ["", f"Previous run: {result.previous}."]
    # ">" only occurs inside JSON strings, where \u003e means the same; keeps "-->" out of the comment.
    blob = json.dumps(result.to_json(), separators=(",", ":")).replace(">", "\\u003e")
    lines += ["", f"<!-- bench-result {blob} -->", ""]
    return "\n".join(lines)


def write_doc(new: Sequence[Result], path: Path = DOC) -> None:
    """Rewrite the results file: new results replace older ones of the same benchmark; others are kept."""
    old = previous_results(path.read_text()) if path.exists() else {}
    latest = dict(old)
    for result in new:
        before = old.get(result.name)
        if before is not None and result.previous is None:
            result.previous = f"{before.date}, {_verdict(before.passed)}: {_headline(before)}"
        latest[result.name] = result
    order = [n for n in REGISTRY if n in latest] + sorted(n for n in latest if n not in REGISTRY)
    header = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run [names...]`); do not edit by hand. Each benchmark runs "
        "in its own process against the emulator on 127.0.0.1; speed and memory targets are checked here, never "
        "by timed assertions in tests. Only the latest result per benchmark is kept, with the previous headline.",
        "",
        "| Benchmark | Date | Headline | Verdict |",
        "|---|---|---|---|",
    ]
    for name in order:
        r = latest[name]
        header.append(f"| [{name}](#{name}) | {r.date} | {_headline(r)} | {_verdict(r.passed)} |")
    body = [section(latest[name]) for name in order]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n\n" + "\n".join(body))


def _summary(result: Result) -> str:
    rows = [f"{result.name}: {_verdict(result.passed).strip('*')}"]
    rows += [f"  {m.name}: {_value(m)} {m.target or ''}".rstrip() for m in result.metrics]
    if result.error:
        rows.append(f"  error: {result.error}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.run``."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run dynasync benchmarks.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(REGISTRY)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        return child(opts.child, Path(opts.out))
    if opts.list:
        for name in REGISTRY:
            print(f"{name}: {module(name).TITLE} (limit {module(name).TIMEOUT_S} s)")
        return 0
    unknown = [n for n in opts.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    results = []
    for name in opts.names or list(REGISTRY):
        print(f"running {name} ...", flush=True)
        result = run_in_child(name)
        print(_summary(result), flush=True)
        results.append(result)
        if not opts.no_write:
            write_doc([result])  # after each one, so a later crash keeps earlier results
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
