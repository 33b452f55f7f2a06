"""A test run writes no tracked file: the reliability tests measure on every
run but write their figures only to the report that $IPYCHAT_RELIABILITY_REPORT
names, which ``python -m bench.reliability`` sets to docs/reliability.md.
"""

import subprocess
from pathlib import Path

import pytest

from bench import reliability
from tests.support import matrix

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
BODY = "## Load\n\nfigures from test_reliability_report"


@pytest.fixture(autouse=True)
def old_target(tmp_path, monkeypatch):
    """Where the writer used to write unasked (``matrix.DOC``), moved off the
    real file, which each test must leave as it was."""
    target = tmp_path / "old-target" / "reliability.md"
    monkeypatch.setattr(matrix, "DOC", target, raising=False)
    committed = DOC.read_bytes()
    yield target
    assert DOC.read_bytes() == committed


def test_without_the_variable_the_writer_writes_nothing(tmp_path, monkeypatch, old_target):
    monkeypatch.delenv(matrix.REPORT_ENV, raising=False)
    assert matrix.write_section("load", BODY) is None
    assert not old_target.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_variable_names_the_file_written(tmp_path, monkeypatch, old_target):
    report = tmp_path / "out" / "reliability.md"
    monkeypatch.setenv(matrix.REPORT_ENV, str(report))
    assert matrix.write_section("load", BODY) == report
    text = report.read_text()
    assert text.startswith(matrix.HEADER)
    assert f"<!-- load:start -->\n{BODY}\n<!-- load:end -->" in text
    for name in set(matrix.SECTIONS) - {"load"}:
        assert f"<!-- {name}:start -->\n_Not measured yet._\n<!-- {name}:end -->" in text
    assert not old_target.exists()


def test_a_section_is_replaced_and_the_others_kept(tmp_path, monkeypatch):
    report = tmp_path / "reliability.md"
    report.write_bytes(DOC.read_bytes())
    monkeypatch.setenv(matrix.REPORT_ENV, str(report))
    matrix.write_section("load", BODY)
    old, new = reliability.sections(DOC), reliability.sections(report)
    assert new["load"] == BODY
    assert {k: v for k, v in new.items() if k != "load"} == \
           {k: v for k, v in old.items() if k != "load"}
    assert report.read_text().split("<!--")[0] == DOC.read_text().split("<!--")[0]


def test_bench_reliability_runs_pytest_with_the_variable_set(tmp_path, monkeypatch, capsys):
    assert reliability.REPORT_ENV == matrix.REPORT_ENV
    report = tmp_path / "reliability.md"
    seen = {}

    def fake_run(command, cwd, env):
        seen.update(command=command, env=env)
        monkeypatch.setenv(matrix.REPORT_ENV, env[matrix.REPORT_ENV])
        matrix.write_section("soak", "## Interrupt and Stop soak\n\nnew")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(reliability.subprocess, "run", fake_run)
    assert reliability.main(["--report", str(report)]) == 0
    assert seen["env"][matrix.REPORT_ENV] == str(report.resolve())
    assert seen["command"][1:3] == ["-m", "pytest"]
    assert seen["command"][3:] == list(reliability.TESTS)
    assert all(Path(reliability.common.REPO, name).exists() for name in reliability.TESTS)
    assert reliability.DOC == DOC
    assert f"wrote {report.resolve()}; sections changed: soak (" in capsys.readouterr().out
