"""The CLI: help documents every option, bad values exit 2 with one line naming the option, runs write folders."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from core.cli import build_parser, main


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    import dataclasses

    from core.config import RunConfig

    for f in dataclasses.fields(RunConfig):
        flag = {"data_options": "--data"}.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in out, flag
    assert "--resume" in out and "default" in out


@pytest.mark.parametrize("args,needle", [
    (["train", "--method", "nope"], "--method"),
    (["train", "--setting", "sideways"], "--setting"),
    (["train", "--lam", "-1"], "--lam"),
    (["train", "--beta", "0"], "--beta"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--steps", "many"], "--steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--track", "swa"], "--track"),
    (["train", "--device", "tpu"], "--device"),
    (["train", "--dataset", "no-such-set", "--model", "tiny-random"], "no-such-set"),
    (["train", "--model", "no-such-model"], "no-such-model"),
])
def test_bad_values_exit_2_with_one_line(args, needle, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main([*args, "--out", str(tmp_path)]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_list_commands(capsys):
    for what, needle in (("models", "toy-clip"), ("datasets", "toy-shapes"), ("methods", "clipood")):
        assert main(["list", what]) == 0
        assert needle in capsys.readouterr().out


def test_train_and_eval_subprocess(tmp_path):
    r = _run("train", "--model", "tiny-random", "--steps", "3", "--batch-size", "4", "--data", "shots=2",
             "--data", "eval_per=2", "--out", str(tmp_path), "--run-id", "cli-run", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "zero-shot" in r.stdout and "result (clipood)" in r.stdout
    s = json.loads((tmp_path / "cli-run/summary.json").read_text())
    assert s["status"] == "done" and s["config"]["data_options"] == {"shots": 2, "eval_per": 2}
    r = _run("eval", "--run", str(tmp_path / "cli-run"), "--json")
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout[r.stdout.index("{"):])
    assert table["result (clipood)"] == s["result"] and table["zero-shot"] == s["zeroshot"]
    r = _run("train", "--model", "tiny-random", "--out", str(tmp_path), "--run-id", "cli-run")
    assert r.returncode == 2 and "already exists" in r.stderr


def test_pretrained_is_allow_listed(tmp_path):
    from core.models import ModelLoadError, resolve

    assert resolve("ViT-B-16", "openai")[1] == "openai"
    with pytest.raises(ModelLoadError, match="not a known tag"):
        resolve("ViT-B-16", "/etc/passwd")
    pickle = tmp_path / "evil.pt"
    pickle.write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match="pickled checkpoints are refused"):
        resolve("ViT-B-16", str(pickle))
    st = tmp_path / "w.safetensors"
    st.write_bytes(b"x")
    assert resolve("ViT-B-16", str(st))[1] == str(st)


def test_offline_download_gives_actionable_message():
    code = ("import os; os.environ['HF_HUB_OFFLINE'] = '1'\n"
            "from core.models import load_clip, ModelLoadError\n"
            "try:\n    load_clip('ViT-B-32')\nexcept ModelLoadError as e:\n    print('MSG', e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert "MSG" in r.stdout, r.stderr[-2000:]
    msg = r.stdout.split("MSG", 1)[1]
    assert "HF_HUB_OFFLINE=1" in msg and "local-dir:" in msg and "laion2b_s34b_b79k" in msg
