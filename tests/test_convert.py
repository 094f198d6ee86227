"""Conversion from T5-family checkpoints and published classifier formats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from transformers import MT5Config, MT5ForConditionalGeneration, T5EncoderModel, T5Model

import t5cls
from t5cls.convert import from_t5
from tests.conftest import build_seq2seq, tiny_t5_config

ATOL = 1e-5


def _inputs(batch: int = 2, length: int = 8):
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, 300, (batch, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 5:] = 0
    return input_ids, attention_mask


def _assert_kept_equal(model, source_state):
    for key, value in model.state_dict().items():
        if key.startswith(("classifier.", "query_embeddings.")):
            continue
        source_key = "shared.weight" if key == "encoder.embed_tokens.weight" else key
        torch.testing.assert_close(value, source_state[source_key], atol=0, rtol=0, msg=key)


# --- sources -------------------------------------------------------------------------------

FAMILIES = {
    "t5 (relu, tied)": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "flan-t5 / t5-v1_1 (gated-gelu, untied)": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "UL2 (gated-silu)": dict(feed_forward_proj="gated-silu", tie_word_embeddings=False),
    "byT5 (byte vocabulary, deep encoder)": dict(vocab_size=384, num_layers=3, num_decoder_layers=1, feed_forward_proj="gated-gelu"),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_from_directory_keeps_exact_weights_and_starts_from_decoder_step_0(family, tmp_path):
    source = build_seq2seq(seed=2, **FAMILIES[family])
    source.save_pretrained(tmp_path)
    model = from_t5(tmp_path, labels=["a", "b", "c"])
    _assert_kept_equal(model, source.state_dict())
    # query = the decoder-start embedding, so the kept layer computes what the full decoder's first
    # layer computes at step 0 of generation.
    torch.testing.assert_close(model.query_embeddings.weight[0], source.shared.weight[0])
    reference = T5Model(tiny_t5_config(**{**FAMILIES[family], "num_decoder_layers": 1})).eval()
    reference.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith(("decoder.block.1", "decoder.block.2", "lm_head"))})
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        hidden = reference(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=torch.zeros(2, 1, dtype=torch.long)).last_hidden_state
        expected = model.classifier(hidden[:, 0])
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as reader:
        stored = {k: reader.get_tensor(k).numel() for k in reader.keys()}
    kept_keys = set(model.state_dict())
    assert model.conversion_stats["dropped"] == sum(n for k, n in stored.items() if k not in kept_keys)


def test_from_pytorch_bin_and_sharded_safetensors(tmp_path):
    source = build_seq2seq(seed=4)
    bin_dir, shard_dir = tmp_path / "bin", tmp_path / "shards"
    source.config.save_pretrained(bin_dir)
    torch.save(source.state_dict(), bin_dir / "pytorch_model.bin")
    source.save_pretrained(shard_dir, max_shard_size="100KB")
    assert (shard_dir / "model.safetensors.index.json").is_file()
    for directory in (bin_dir, shard_dir):
        _assert_kept_equal(from_t5(directory, num_labels=2), source.state_dict())


def test_in_memory_sources(tmp_path):
    source = build_seq2seq(seed=5)
    from_seq2seq = from_t5(source, labels=["x", "y"])
    _assert_kept_equal(from_seq2seq, source.state_dict())

    source.save_pretrained(tmp_path)
    t5_model = T5Model.from_pretrained(tmp_path)
    _assert_kept_equal(from_t5(t5_model, labels=["x", "y"], num_decoder_layers=2), t5_model.state_dict())

    encoder_only = T5EncoderModel.from_pretrained(tmp_path)
    pooled = from_t5(encoder_only, labels=["x", "y"], num_decoder_layers=0)
    _assert_kept_equal(pooled, encoder_only.state_dict())
    with pytest.raises(ValueError, match="num_decoder_layers=1 but T5EncoderModel has only 0 decoder layer"):
        from_t5(encoder_only, labels=["x", "y"])


def test_mt5_source():
    torch.manual_seed(6)
    config = MT5Config(vocab_size=500, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu")
    source = MT5ForConditionalGeneration(config).eval()
    model = from_t5(source, labels=["a", "b"])
    _assert_kept_equal(model, source.state_dict())
    assert model.config.vocab_size == 500


def test_query_init_labels_is_mean_label_embedding(tiny_t5_dir, tiny_tokenizer):
    labels = ["sports", "Sci/Tech", "entailment"]
    model = from_t5(tiny_t5_dir, labels=labels, problem_type="multi_label_classification", query_init="labels")
    shared = model.shared.weight
    for i, label in enumerate(labels):
        ids = tiny_tokenizer(label, add_special_tokens=False).input_ids
        torch.testing.assert_close(model.query_embeddings.weight[i], shared[ids].mean(0))


# --- published formats (REFERENCE.md §1, §2) -------------------------------------------------


def test_published_t5forclassification_checkpoint(tmp_path):
    """n_class / head.weight layout: logits = head(decoder(<pad> ...)[:, 0]) computed with T5Model."""
    config = tiny_t5_config(num_decoder_layers=1)
    torch.manual_seed(8)
    t5 = T5Model(config).eval()
    head = torch.randn(3, config.d_model)
    state = {k: v.contiguous() for k, v in t5.state_dict().items() if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
    save_file({**state, "head.weight": head}, str(tmp_path / "model.safetensors"))
    cfg = config.to_dict()
    cfg.update(architectures=["T5ForClassification"], n_class=3, model_type="t5", tie_word_embeddings=False)
    (tmp_path / "config.json").write_text(json.dumps(cfg))

    model = t5cls.T5ForClassification.from_pretrained(tmp_path)
    # Its config names no labels; they are MNLI's order (REFERENCE.md §1).
    assert model.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}
    input_ids, attention_mask = _inputs()
    decoder_input_ids = torch.tensor([[0, 37, 12], [0, 5, 9]])  # <pad> then text: cannot change position 0
    with torch.no_grad():
        hidden = t5(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).last_hidden_state
        expected = hidden[:, 0] @ head.T
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("problem_type", ["single_label_classification", "multi_label_classification"])
def test_published_enct5_checkpoint(tmp_path, problem_type):
    config = tiny_t5_config(num_decoder_layers=1)
    torch.manual_seed(9)
    t5 = T5Model(config).eval()
    num_labels = 3
    table = torch.randn(4, config.d_model)  # decoder_vocab_size 4 >= queries
    state = {f"transformer.{k}": v.contiguous() for k, v in t5.state_dict().items() if not k.endswith("embed_tokens.weight")}
    state["decoder_embeddings.weight"] = table
    if problem_type == "multi_label_classification":
        weight, bias = torch.randn(num_labels, config.d_model), torch.randn(num_labels)
        state.update({"classification_head.weights": weight, "classification_head.biases": bias})
    else:
        weight, bias = torch.randn(num_labels, config.d_model), torch.randn(num_labels)
        state.update({"classification_head.out_proj.weight": weight, "classification_head.out_proj.bias": bias})
    save_file(state, str(tmp_path / "model.safetensors"))
    cfg = config.to_dict()
    cfg.update(model_type="enct5", architectures=["EncT5ForSequenceClassification"], decoder_vocab_size=4,
               problem_type=problem_type, id2label={str(i): f"L{i}" for i in range(num_labels)}, classifier_dropout=0.0)
    (tmp_path / "config.json").write_text(json.dumps(cfg))

    model = t5cls.T5ForClassification.from_pretrained(tmp_path)
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        if problem_type == "single_label_classification":
            queries = table[:1].expand(2, -1, -1)  # (batch, 1, d_model)
            hidden = t5(input_ids=input_ids, attention_mask=attention_mask, decoder_inputs_embeds=queries).last_hidden_state
            expected = hidden[:, 0] @ weight.T + bias
        else:
            for module in t5.modules():
                if hasattr(module, "config"):
                    module.config._attn_implementation = "eager"
            queries = table[:num_labels].expand(2, -1, -1)  # (batch, labels, d_model)
            hidden = t5(input_ids=input_ids, attention_mask=attention_mask, decoder_inputs_embeds=queries,
                        decoder_attention_mask=torch.zeros(2, 1, num_labels, num_labels)).last_hidden_state
            expected = (hidden * weight).sum(-1) + bias
    assert logits.shape == (2, num_labels)
    assert model.config.id2label == {0: "L0", 1: "L1", 2: "L2"}
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)


# --- bad input ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("src")
    build_seq2seq(seed=10).save_pretrained(out)
    return out


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(problem_type="multiclass"), "problem_type='multiclass' is not supported"),
        (dict(labels=["a", "b"], num_labels=3), "num_labels=3 disagrees with the 2 labels"),
        (dict(labels=["a", "a", "b"]), r"labels must be unique; \['a'\]"),
        (dict(labels=["a", ""]), "labels must be non-empty strings"),
        (dict(num_labels=1), "single_label_classification needs at least 2 labels"),
        (dict(num_decoder_layers=3), "num_decoder_layers=3 but .* has only 2 decoder layer"),
        (dict(num_decoder_layers=-1), "num_decoder_layers=-1"),
        (dict(query_init="labels", labels=["a", "b"]), "query_init='labels' gives one query per label"),
        (dict(query_init="random"), "query_init='random' is not supported"),
        (dict(dtype="float99"), "dtype='float99' is not a torch dtype"),
    ],
)
def test_bad_settings_are_clear_errors(source_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_t5(source_dir, **kwargs)


def test_non_t5_source_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(ValueError, match="model_type 'bert', not a T5-family model"):
        from_t5(tmp_path, num_labels=2)


def test_missing_and_truncated_weights(tmp_path, source_dir):
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "config.json").write_text((source_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="No weights in .*found \\['config.json'\\]"):
        from_t5(missing, num_labels=2)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((source_dir / "config.json").read_text())
    data = (source_dir / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        from_t5(truncated, num_labels=2)

    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_t5(tmp_path / "nowhere" / "at-all", num_labels=2)


def test_missing_and_misshaped_tensors_are_named(tmp_path, source_dir):
    from safetensors.torch import load_file

    state = load_file(str(source_dir / "model.safetensors"))
    for name, edit, message in [
        ("lacking", lambda s: s.pop("encoder.block.1.layer.0.SelfAttention.k.weight"), "lacks 1 tensor.*encoder.block.1.layer.0.SelfAttention.k.weight"),
        (
            "misshaped",
            lambda s: s.__setitem__("decoder.final_layer_norm.weight", torch.ones(7)),
            r"wrong shape.*decoder.final_layer_norm.weight \(7,\) \(expected \(32,\)\)",
        ),
    ]:
        broken = dict(state)
        edit(broken)
        directory = tmp_path / name
        directory.mkdir()
        (directory / "config.json").write_text((source_dir / "config.json").read_text())
        save_file(broken, str(directory / "model.safetensors"))
        with pytest.raises(ValueError, match=message):
            from_t5(directory, num_labels=2)


# --- CLI ------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "t5cls.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_convert_writes_a_loadable_classifier(tiny_t5_dir, tmp_path):
    out = tmp_path / "clf"
    result = _cli("convert", str(tiny_t5_dir), str(out), "--labels", "World,Sports,Business,Sci/Tech")
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "dropped" in result.stdout
    assert {"config.json", "model.safetensors", "modeling.py", "configuration.py", "packed.py", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert t5cls.Classifier(out).labels == ["World", "Sports", "Business", "Sci/Tech"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--labels", "a,b", "--problem-type", "regression", "--decoder-layers", "5"], "num_decoder_layers=5"),
        (["--num-labels", "1"], "needs at least 2 labels"),
    ],
)
def test_cli_convert_failure_writes_nothing(source_dir, tmp_path, args, message):
    out = tmp_path / "out"
    result = _cli("convert", str(source_dir), str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no staging directory left behind either


def test_cli_convert_from_bert_is_an_error(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    result = _cli("convert", str(tmp_path / "bert"), str(tmp_path / "out"), "--num-labels", "2")
    assert result.returncode == 2 and "not a T5-family model" in result.stderr
    assert not (tmp_path / "out").exists()


# --- memory ----------------------------------------------------------------------------------

MEMORY_PROBE = r"""
import resource, sys, torch
import t5cls
from t5cls.convert import read_tensors, _kept_key
src = sys.argv[1]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = t5cls.T5ForClassification.from_t5(src, num_labels=2)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kept_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
print((peak - base) * 1024, kept_bytes)
"""


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_conversion_never_holds_the_dropped_decoder(tmp_path, fmt):
    """Peak RSS growth stays under 1.3x the kept weights although the checkpoint is 5x larger."""
    from transformers import T5ForConditionalGeneration

    # A deep decoder (10 layers) and a 1-layer encoder: what we drop is ~4x what we keep.
    config = tiny_t5_config(vocab_size=8000, d_model=256, d_kv=32, d_ff=1024, num_heads=8, num_layers=1, num_decoder_layers=10)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in T5ForConditionalGeneration(config).state_dict().items()}
    state = {k: torch.full(shape, 0.01) for k, shape in shapes.items() if not k.endswith("embed_tokens.weight")}
    total = sum(v.numel() * 4 for v in state.values())
    config.save_pretrained(tmp_path)
    if fmt == "safetensors":
        save_file(state, str(tmp_path / "model.safetensors"))
    else:
        torch.save(state, tmp_path / "pytorch_model.bin")
    del state
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    grown, kept = map(int, result.stdout.split())
    assert total > 4 * kept
    assert grown <= 1.3 * kept, f"peak RSS grew {grown / 1e6:.1f} MB for {kept / 1e6:.1f} MB kept ({total / 1e6:.1f} MB checkpoint)"


# --- UMT5: a relative position bias in every layer ---------------------------------------------


def _tiny_umt5(seed: int, **overrides):
    from transformers import UMT5Config, UMT5ForConditionalGeneration

    torch.manual_seed(seed)
    fields = dict(vocab_size=500, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0,
                  feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
    return UMT5ForConditionalGeneration(UMT5Config(**{**fields, **overrides})).eval()


@pytest.mark.parametrize("problem_type", ["single_label_classification", "multi_label_classification"])
def test_umt5_source_keeps_every_layers_bias_and_equals_umt5model(problem_type, tmp_path):
    from transformers import UMT5Model

    source = _tiny_umt5(seed=11)
    source.save_pretrained(tmp_path / "umt5")
    model = from_t5(tmp_path / "umt5", labels=["a", "b", "c"], problem_type=problem_type)
    assert model.config.relative_attention_per_layer
    assert "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" in model.state_dict()
    _assert_kept_equal(model, source.state_dict())
    reference = UMT5Model(type(source.config)(**{**source.config.to_dict(), "num_decoder_layers": 1})).eval()
    reference.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith(("decoder.block.1", "lm_head"))})
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        if problem_type == "single_label_classification":
            start = torch.zeros(2, 1, dtype=torch.long)
            hidden = reference(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start).last_hidden_state
            expected = model.classifier(hidden[:, 0])
        else:
            # One query per label, seeing each other (no causal mask), at positions 0..2.
            queries = torch.randn(3, 32)
            model.query_embeddings.weight.copy_(queries)
            decoder_mask = torch.ones(2, 3, dtype=torch.long)
            encoder_hidden = reference.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            from transformers.models.umt5.modeling_umt5 import UMT5Block  # noqa: F401  (the blocks compared)

            hidden = queries.expand(2, -1, -1)
            zero = torch.zeros(1, 1, 3, 3)
            cross = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for block in reference.decoder.block:
                hidden = block(hidden, zero, encoder_hidden, encoder_attention_mask=cross)
            hidden = reference.decoder.final_layer_norm(hidden)
            expected = (hidden * model.classifier.weight).sum(-1) + model.classifier.bias
            del decoder_mask
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    model.save_pretrained(tmp_path / "classifier")
    reloaded = t5cls.T5ForClassification.from_pretrained(tmp_path / "classifier").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=input_ids, attention_mask=attention_mask).logits, logits, atol=ATOL, rtol=0)
