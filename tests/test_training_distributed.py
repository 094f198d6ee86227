"""Training across processes and machines: a killed run resumes, torchrun with 2 CPU processes,
and the FSDP wrapping of a flan-t5-xxl-size classifier (built on the meta device).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import t5cls
from t5cls.training import CHECKPOINTS_DIR, last_checkpoint, train
from tests.conftest import REFERENCE_DIR, REPO, needs_shared
from tests.test_training import topic_frame

pytestmark = pytest.mark.slow

# One thread per process: two processes on two cores, and no stalls when the cores are busy.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_killed_run_resumes_from_its_last_checkpoint_and_ends_at_the_same_step(tiny_t5_dir, tmp_path):
    data = tmp_path / "train.csv"
    topic_frame(8, seed=0).to_csv(data, index=False)  # 24 rows / 8 per batch = 3 steps per epoch
    out = tmp_path / "run"
    settings = dict(epochs=4, batch_size=8, checkpoint_steps=2, show_progress_bar=False)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from transformers import TrainerCallback
        from t5cls import train

        class Slow(TrainerCallback):  # leaves time to kill the run between checkpoints
            def on_step_end(self, args, state, control, **kwargs):
                time.sleep(0.5)

        train({str(tiny_t5_dir)!r}, {str(data)!r}, output_dir={str(out)!r}, callbacks=[Slow()], **{settings!r})
    """))
    process = subprocess.Popen([sys.executable, str(script)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while last_checkpoint(out / CHECKPOINTS_DIR) is None:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)  # no cleanup, like a preempted machine
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists() and not (out / "model.safetensors").exists()
    killed_at = int(last_checkpoint(out / CHECKPOINTS_DIR).name.split("-")[1])
    assert killed_at < 12

    result = train(tiny_t5_dir, data, output_dir=out, resume=True, **settings)
    assert result.resumed_from_step == killed_at
    assert result.global_step == 12  # 3 steps x 4 epochs, as an uninterrupted run
    report = json.loads((out / "metrics.json").read_text())
    assert report["train"]["resumed_from_step"] == killed_at
    assert t5cls.Classifier(out).labels == ["business", "science", "sports"]


def test_last_checkpoint_skips_an_incomplete_one(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path).name == "checkpoint-4"
    assert last_checkpoint(tmp_path / "absent") is None


def test_torchrun_two_cpu_processes_train_and_save_one_model(tiny_t5_dir, tmp_path):
    data = tmp_path / "train.csv"
    topic_frame(8, seed=0).to_csv(data, index=False)
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "t5cls.cli", "train", "--model", str(tiny_t5_dir), "--train", str(data), "--eval", str(data),
        "--output", str(out), "--epochs", "1", "--batch-size", "4",
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 3 steps") == 1  # 24 rows / (4 per device x 2 devices), printed by rank 0 only
    report = json.loads((out / "metrics.json").read_text())
    assert report["train"]["settings"]["world_size"] == 2
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    assert not (out / CHECKPOINTS_DIR).exists() and not (out / ".final-model").exists()
    assert t5cls.Classifier(out).predict("market stock profit") in ["business", "science", "sports"]


@needs_shared  # the published config.json of flan-t5-xxl-classif-3way
def test_fsdp_wraps_each_t5_block_of_the_xxl_classifier(tmp_path):
    """The xxl architecture, built on meta (no memory): accelerate's FSDP policy resolves to T5Block."""
    import yaml
    from accelerate import FullyShardedDataParallelPlugin
    from transformers.models.t5.modeling_t5 import T5Block

    from t5cls.convert import classification_config
    from t5cls.modeling import T5ForClassification

    reference = REFERENCE_DIR / "flan-t5-xxl-classif-3way" / "config.json"
    source = json.loads(reference.read_text())
    config = classification_config(
        source, id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
        problem_type="single_label_classification", num_decoder_layers=1,
    )
    with torch.device("meta"):
        model = T5ForClassification(config)
    assert (config.d_model, config.num_layers, config.d_ff, config.num_heads) == (4096, 24, 10240, 64)
    assert sum(p.numel() for p in model.parameters()) > 4.9e9  # encoder + one decoder layer of flan-t5-xxl
    assert set(model._no_split_modules) == {"T5Block"}

    # The shipped accelerate config names the same class; both resolve to transformers' T5Block.
    fsdp_config = yaml.safe_load((REPO / "examples" / "fsdp" / "accelerate_fsdp.yaml").read_text())["fsdp_config"]
    assert fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    for names in (None, fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")):
        plugin = FullyShardedDataParallelPlugin(auto_wrap_policy="transformer_based_wrap", transformer_cls_names_to_wrap=names)
        plugin.set_auto_wrap_policy(model)
        assert plugin.auto_wrap_policy.keywords["transformer_layer_cls"] == {T5Block}
        wrapped = [name for name, module in model.named_modules() if plugin.auto_wrap_policy(module=module, recurse=False, nonwrapped_numel=0)]
        assert wrapped == [f"encoder.block.{i}" for i in range(24)] + ["decoder.block.0"]


def test_lora_example_runs(tiny_t5_dir, tmp_path):
    data = tmp_path / "train.csv"
    pd.concat([topic_frame(2, seed=0)]).to_csv(data, index=False)
    done = subprocess.run(
        [sys.executable, str(Path(REPO) / "examples" / "lora.py"), "--model", str(tiny_t5_dir), "--train", str(data),
         "--output", str(tmp_path / "out"), "--epochs", "1", "--rank", "4"],
        env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    assert "adapter:" in done.stdout
