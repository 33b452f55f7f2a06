"""Each benchmark runs end to end at smoke size and writes its JSON.

Speed is never asserted here (the figures at smoke size mean nothing); what
is asserted is that every command exits 0 and records what the README says
it records, and that ``bench.decode`` catches a decoder that reads wrong.
"""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench import clients, common
from bench import connections as bench_connections
from bench import decode as bench_decode

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
    "context": {"contender", "seconds", "bytes"},
    "connections": {"rtt_ms", "client", "cold_ms", "warm_ms", "connections", "warm_vs_sdk",
                    "cold_vs_sdk", "sessions"},
}
EXTRA_KEYS = {"load": {"samples", "importtime"}, "memory": {"samples"}, "context": {"samples"}}
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
    pytest.param("memory", marks=KERNEL), "context", "connections",
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


def test_connections_counts_what_each_session_opened(tmp_path):
    run_bench("connections", tmp_path, "--questions", "3")
    rows = load_result(tmp_path, "connections")["rows"]
    assert sorted(r["client"] for r in rows) == sorted(bench_connections.CLIENTS)
    for found in rows:
        (session,) = found["sessions"]  # one repeat at smoke size
        assert len(session["first_text_s"]) == 3 and all(t > 0 for t in session["first_text_s"])
        assert session["connections"] >= 1 and found["warm_ms"] > 0


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


@pytest.fixture(scope="module")
def stream_base():
    with common.StreamServer() as server:
        yield server.base(300)


UTF8 = bytes.decode


def raw_decoder(counted, kept):
    """A raw text consumer like ``bench.clients.minimal_text``: ``counted`` decodes
    the timed streams (given a sink), ``kept`` the stream whose text is kept."""

    async def consume(base, sink=None):
        parts = [] if sink is None else sink
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/chat", json=clients.BODY) as response:
                body = await response.read()
        parts.append((kept if sink is None else counted)(body))
        return parts

    return consume


@pytest.mark.timeout(60)
@pytest.mark.parametrize("counted, kept, passes", [
    (UTF8, UTF8, True),
    # Each check alone must catch its case: the count on timed streams, the
    # whole text on the untimed one (a wrong text of the right length).
    (lambda body: body.decode("latin-1"), UTF8, False),
    (UTF8, lambda body: body.decode().swapcase(), False),
], ids=["right", "wrong-length-when-timed", "wrong-text-when-kept"])
def test_raw_round_checks_what_each_decoder_read(stream_base, counted, kept, passes):
    consumers = {"floor": ("raw-bytes", lambda base: clients.raw_bytes(base, "/chat")),
                 "decoder": ("raw", raw_decoder(counted, kept))}
    wants = {"floor": bench_decode.expected("raw-bytes", 300),
             "decoder": bench_decode.expected("raw", 300)}
    loop = asyncio.new_event_loop()
    try:
        if passes:
            runs = bench_decode.raw_round(loop, consumers, stream_base, wants, streams=2)
            assert {name: len(found) for name, found in runs.items()} == {"floor": 2, "decoder": 2}
            assert all(r["wall"] > 0 and r["cpu"] >= 0 for found in runs.values() for r in found)
        else:
            with pytest.raises(AssertionError, match="decoded a wrong answer"):
                bench_decode.raw_round(loop, consumers, stream_base, wants, streams=2)
    finally:
        loop.close()
