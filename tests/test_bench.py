"""bench.py: the FLOP count against torch's own counter, the machine line, and a tiny end-to-end run (timings never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import t5cls
from t5cls.bench import format_report, load_texts, machine_line, model_flops, run_benchmark
from t5cls.devices import CPU_FEATURES, cpu_family_model, cpu_features, cpu_flags
from tests.conftest import sample_texts, tiny_t5_config


def _counted(model, input_ids) -> int:
    model.set_attn_implementation("eager")  # torch's counter does not count the CPU SDPA kernel
    model.requires_grad_(False)
    with FlopCounterMode(display=False) as counter:
        model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    return counter.get_total_flops()


@pytest.mark.parametrize("ffn", ["relu", "gated-gelu"])
def test_flops_match_torch_flop_counter(ffn):
    from transformers import T5EncoderModel, T5ForSequenceClassification

    config = tiny_t5_config(feed_forward_proj=ffn, num_labels=3, pad_token_id=0, eos_token_id=1)
    input_ids = torch.randint(5, 100, (2, 9))
    input_ids[:, -1] = 1  # one </s> per row, as T5ForSequenceClassification needs
    lengths = [9, 9]

    seq2seq = T5ForSequenceClassification(config).eval()
    assert model_flops(seq2seq.config, lengths, kind="seq2seq", num_labels=3) == _counted(seq2seq, input_ids)
    encoder = T5EncoderModel(config).eval()
    head = 2 * 2 * config.d_model * 3  # the linear head the benchmark adds after mean pooling
    assert model_flops(encoder.config, lengths, kind="encoder", num_labels=3) == _counted(encoder, input_ids) + head

    for problem_type, layers in [("single_label_classification", 1), ("multi_label_classification", 2), ("single_label_classification", 0)]:
        model = t5cls.T5ForClassification.from_t5(seq2seq.transformer, num_labels=3, problem_type=problem_type, num_decoder_layers=layers)
        assert model_flops(model.config, lengths, kind="t5cls", num_labels=3) == _counted(model, input_ids), (problem_type, layers)


def test_flops_reject_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        model_flops(tiny_t5_config(), [3], kind="decoder", num_labels=2)


def test_tiny_end_to_end_run(tmp_path, capsys, tiny_tokenizer_dir):
    from t5cls.cli import main

    data = tmp_path / "texts.txt"
    data.write_text("\n".join(sample_texts(40)) + "\n", encoding="utf-8")
    argv = ["bench", "--preset", "tiny", "--n", "40", "--rows", "3", "--repeat", "1", "--json", str(tmp_path / "r.json"),
            "--data", str(data), "--tokenizer", str(tiny_tokenizer_dir)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| row | params | seq/s | x row 1 |" in table and "fp32 matmul on this machine" in table
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["row"] for r in report["rows"]] == [1, 3]  # row 1 always runs: the others are compared to it
    rows = {r["row"]: r for r in report["rows"]}
    assert rows[1]["ratio"] == 1.0 and rows[3]["padding"] < rows[1]["padding"]
    assert rows[3]["params"] < rows[1]["params"]  # half a T5: no full decoder
    assert all(r["seq_per_s"] > 0 and r["gflops"] > 0 for r in report["rows"])


def test_bad_settings_and_data(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        run_benchmark(preset="t5-huge")
    with pytest.raises(ValueError, match="rows"):
        run_benchmark(preset="tiny", rows=(1, 7))
    (tmp_path / "texts.csv").write_text("id,body\n1,hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\['id', 'body'\]"):
        load_texts(tmp_path / "texts.csv", n=5)
    with pytest.raises(FileNotFoundError):
        load_texts(tmp_path / "missing.tsv", n=5)
    assert load_texts(tmp_path / "texts.csv", n=5, text_column="body")[0] == ["hello"]


def test_fallback_tokenizer_ends_with_eos():
    from t5cls.bench import _fallback_tokenizer

    tok = _fallback_tokenizer(["the cat sat", "a dog ran far"])
    ids = tok(["the cat sat", "unknown words"])["input_ids"]
    assert ids[0][-1] == tok.eos_token_id == 1 and tok.pad_token_id == 0 and len(ids[1]) == 3


def test_format_report_renders_every_row():
    from t5cls.bench import BenchReport, RowResult

    row = RowResult(row=1, name="x", params=10**6, seconds=1.0, seq_per_s=5.0, ratio=1.0, peak_mb=10, padding=0.5, gflops=1.0, matmul_share=0.1)
    report = BenchReport(
        preset="tiny", shapes={"d_model": 32}, num_texts=5, data="d", tokenizer="t", threads=2, batch_tokens=64, repeat=1,
        mean_tokens=3.0, max_tokens=5, matmul_gflops=10.0, matmul_shape=(64, 32, 64), export_seconds=None, machine="m",
        rows=[row],
    )  # fmt: skip
    assert "| 1. x | 1.0M | 5.0 | 1.00x | 10 | 50.0% | 1.0 | 10% |  |" in format_report(report)


def test_machine_line_names_the_cpu_features():
    """Hosts sold under one CPU name differ in vector units; the line says which this one has."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        first = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags"))
        assert cpu_flags() == frozenset(first.split(":", 1)[1].split())
    features = cpu_features()
    assert features.endswith(f"; torch {torch.backends.cpu.get_cpu_capability()}")
    for flag, name in CPU_FEATURES.items():
        assert (name in features.split(";")[0].split(", ")) == (flag in cpu_flags())
    line = machine_line(2)
    assert f"({features})" in line and "2 threads" in line and "load average" in line
    if cpuinfo.exists() and cpu_family_model():
        family = next(row for row in cpuinfo.read_text().splitlines() if row.startswith("cpu family")).split(":")[1].strip()
        assert f" family {family} model " in line


def test_rerank_inputs_split_documents_and_queries():
    from t5cls.bench import rerank_inputs
    from t5cls.inputs import iter_texts
    from tests.conftest import DEMO_DATA

    texts = list(iter_texts(DEMO_DATA))
    queries, lists = rerank_inputs(2, 3, DEMO_DATA)
    assert lists == [texts[0:3], texts[3:6]]
    assert queries == [" ".join(text.split()[:6]) for text in texts[6:8]]
    with pytest.raises(t5cls.InputError, match=r"texts; 1000 queries x 3 documents need 4000"):
        rerank_inputs(1000, 3, DEMO_DATA)
