"""Each benchmark runs end to end at smoke size and writes its JSON.

Speed is never asserted here (the figures at smoke size mean nothing); what
is asserted is that every command exits 0 and records what the README says
it records.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMMON_KEYS = {"name", "command", "smoke", "repeats", "machine", "params", "rows", "targets"}
TARGET_KEYS = {"name", "value", "op", "limit", "unit", "met"}
ROW_KEYS = {
    "decode": {"consumer", "body", "wall_s", "cpu_s", "MB_per_s", "chunks_per_s", "vs_minimal",
               "cpu_vs_minimal"},
    "render": {"scenario", "kind", "chunks", "pace_ms", "updates", "update_MB", "kernel_cpu_s",
               "proc_cpu_s", "wall_s", "first_update_ms"},
    "load": {"measure", "seconds"},
    "concurrency": {"consumer", "streams", "chunks_each", "one_stream_chunks_per_s",
                    "concurrent_chunks_per_s", "ratio"},
    "memory": {"measure", "MB", "x_answer"},
}
EXTRA_KEYS = {"load": {"samples", "importtime"}, "memory": {"samples"}}
KERNEL = pytest.mark.kernel


def run_bench(name, results, *extra):
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--smoke",
                           "--results-dir", str(results), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def load_result(results, name):
    path = results / f"{name}.json"
    assert path.exists(), f"{name} wrote no {path.name}"
    return json.loads(path.read_text())


@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", [
    "decode", pytest.param("render", marks=KERNEL), "load", "concurrency",
    pytest.param("memory", marks=KERNEL),
])
def test_benchmark_smoke_writes_its_json(name, tmp_path):
    done = run_bench(name, tmp_path)
    data = load_result(tmp_path, name)
    assert COMMON_KEYS | EXTRA_KEYS.get(name, set()) <= set(data)
    assert data["name"] == name and data["smoke"] is True and data["repeats"] == 1
    assert {"nproc", "python"} <= set(data["machine"])
    assert data["rows"], "no rows measured"
    for row in data["rows"]:
        assert ROW_KEYS[name] <= set(row), sorted(row)
    assert data["targets"], "no targets checked"
    for found in data["targets"]:
        assert set(found) == TARGET_KEYS
        assert isinstance(found["met"], bool)
    assert "Targets" in done.stdout  # the printed table


def test_all_runs_the_chosen_benchmarks_and_gathers_their_targets(tmp_path):
    run_bench("all", tmp_path, "--only", "decode")
    decode = load_result(tmp_path, "decode")
    summary = load_result(tmp_path, "all")
    assert summary["rows"] == [{"benchmark": "decode", "exit_status": 0}]
    assert [t["name"] for t in summary["targets"]] == [
        f"decode: {t['name']}" for t in decode["targets"]]


def test_all_rejects_an_unknown_benchmark(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.all", "--only", "nosuch",
                           "--results-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown benchmark(s): nosuch" in done.stderr
    assert not (tmp_path / "all.json").exists()
