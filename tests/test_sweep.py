"""The paper-protocol sweep end to end on a PACS-shaped parquet fixture with the tiny random CLIP: every
leave-one-domain-out run x seed, resumable after an interruption, aggregated next to the published numbers."""

import json
import threading

from test_real_data import make_parquet_repo

from core.cli import main
from core.config import RunConfig
from core.engine import run_to_end
from core.sweep import paper_results, plan


def test_sweep_runs_resumes_and_aggregates(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLIPOOD_CACHE", str(tmp_path / "cache"))
    repo = make_parquet_repo(tmp_path / "pacs", {"train": 36})
    out = tmp_path / "sweep"
    args = ["sweep", "--protocol", "domain_shift", "--datasets", "pacs", "--seeds", "2", "--model", "tiny-random",
            "--steps", "2", "--batch-size", "2", "--eval-every", "0", "--checkpoint-every", "0", "--device", "cpu",
            "--data", f"path={repo}", "--out", str(out)]
    assert main([*args, "--max-runs", "2"]) == 0  # interrupted after two runs
    assert "4 runs left" in capsys.readouterr().out
    jobs = plan("domain_shift", ["pacs"], 2, RunConfig(model="tiny-random", data_options={"path": str(repo)}))
    assert [j[0] for j in jobs] == ["pacs-art-s0", "pacs-art-s1", "pacs-photo-s0", "pacs-photo-s1", "pacs-sketch-s0",
                                    "pacs-sketch-s1"]
    first = (out / "pacs-art-s0" / "events.jsonl").read_text()
    # a run killed after its first checkpoint, and one that died before writing any
    cfg = RunConfig(**{**json.loads((out / "pacs-art-s0" / "config.json").read_text()),
                       "targets": ["photo"], "sources": ["art", "sketch"], "seed": 0})
    stop = threading.Event()
    stop.set()
    assert run_to_end(cfg, out / "pacs-photo-s0", stop)["status"] == "cancelled"
    (out / "pacs-photo-s1").mkdir()
    (out / "pacs-photo-s1" / "config.json").write_text("{}")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "complete" in text and "resuming pacs-photo-s0" in text and "running pacs-photo-s1" in text
    assert "pacs-art-s0" not in text.split("Metric:")[0]  # finished runs are skipped
    assert (out / "pacs-art-s0" / "events.jsonl").read_text() == first  # a finished run is not rerun
    summaries = {j[0]: json.loads((out / j[0] / "summary.json").read_text()) for j in jobs}
    assert all(s["status"] == "done" for s in summaries.values())
    assert summaries["pacs-photo-s0"]["config"]["targets"] == ["photo"]
    table = json.loads((out / "sweep.json").read_text())
    row = table["datasets"]["pacs"]
    per_seed = [sum(summaries[f"pacs-{t}-s{s}"]["result"]["ood"] for t in ("art", "photo", "sketch")) / 3
                for s in (0, 1)]
    mean = sum(per_seed) / 2
    assert row["ours"]["ood"][0] == round(mean, 2) and row["seeds"] == 2 and row["runs_done"] == 6
    assert row["ours"]["ood"][1] == round(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5, 2)  # sample std of 2
    assert row["paper"] == paper_results()["domain_shift"]["pacs"]
    md = (out / "table.md").read_text()
    paper = paper_results()["domain_shift"]["pacs"]["paper"]
    assert f"{paper[0]:.1f} ± {paper[1]:.1f}" in md and "DISAM" in md
