"""The eval command: default data from ../shared/data, a clear message when it is missing."""
from click.testing import CliRunner

import server.evaluation.cli as cli


def test_missing_default_data_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "SHARED", tmp_path / "nowhere")
    res = CliRunner().invoke(cli.eval_cmd, ["--format", "diginetica", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no default diginetica data" in res.output and "--data PATH" in res.output


def test_formats_without_a_default_need_data(tmp_path):
    res = CliRunner().invoke(cli.eval_cmd, ["--format", "sessions", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "pass --data PATH" in res.output


def test_runs_on_a_sessions_file(tmp_path):
    p = tmp_path / "s.txt"
    rows = ["SessionId ItemId Time"]
    t = 1_400_000_000
    for s in range(40):
        for j in range(4):
            rows.append(f"{s} {(s + j) % 9} {t + s * 600 + j * 30}")
    p.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(cli.eval_cmd, ["--format", "sessions", "--data", str(p), "--out", str(out), "--quiet",
                                            "--no-ranker", "--only", "baseline:,placement:detail_similar",
                                            "--signals", "bounce_ms=5000"])
    assert res.exit_code == 0, res.output
    assert (out / "sessions.json").exists() and "## Next item in session" in res.output
    bad = CliRunner().invoke(cli.eval_cmd, ["--format", "sessions", "--data", str(p), "--out", str(out),
                                            "--signals", "nonsense=1"])
    assert bad.exit_code == 2 and "unknown field" in bad.output
