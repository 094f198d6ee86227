from __future__ import annotations

import json

import pytest
import torch

from t5cls import T5ClassificationConfig, T5ForClassification
from tests.conftest import REFERENCE_DIR, TINY, needs_shared


def test_defaults_and_problem_type_inference():
    single = T5ClassificationConfig(**TINY, id2label={0: "a", 1: "b"})
    assert single.model_type == "t5cls"
    assert single.num_decoder_layers == 1
    assert single.problem_type == "single_label_classification"
    assert single.num_queries == 1
    assert single.use_cache is False and single.is_encoder_decoder is False

    regression = T5ClassificationConfig(**TINY, num_labels=1)
    assert regression.problem_type == "regression" and regression.num_queries == 1

    multi = T5ClassificationConfig(**TINY, num_labels=4, problem_type="multi_label_classification")
    assert multi.num_queries == 4

    pooled = T5ClassificationConfig(**TINY, num_labels=4, num_decoder_layers=0)
    assert pooled.num_queries == 0


def test_unknown_problem_type_names_the_value():
    with pytest.raises(ValueError, match="problem_type='multi_class'.*single_label_classification"):
        T5ClassificationConfig(**TINY, problem_type="multi_class")


def test_negative_decoder_layers_is_an_error():
    with pytest.raises(ValueError, match="num_decoder_layers=-1"):
        T5ClassificationConfig(**TINY, num_decoder_layers=-1)


def test_config_round_trips_through_json(tmp_path):
    config = T5ClassificationConfig(**TINY, num_labels=3, problem_type="multi_label_classification", num_decoder_layers=2)
    config.save_pretrained(tmp_path)
    loaded = T5ClassificationConfig.from_pretrained(tmp_path)
    assert (loaded.problem_type, loaded.num_decoder_layers, loaded.num_labels) == ("multi_label_classification", 2, 3)


@needs_shared  # the published config.json of flan-t5-xxl-classif-3way
def test_seed_checkpoint_architecture_builds_on_meta_with_expected_size():
    """flan-t5-xxl-classif-3way: 24-layer xxl encoder, one decoder layer, 3-way head, built for free on meta."""
    from t5cls.convert import classification_config

    source = json.loads((REFERENCE_DIR / "flan-t5-xxl-classif-3way" / "config.json").read_text())
    config = classification_config(
        source,
        id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
        problem_type="single_label_classification",
        num_decoder_layers=source["num_decoder_layers"],
    )
    with torch.device("meta"):
        model = T5ForClassification(config)

    d, inner, ff, vocab, heads, buckets = 4096, 64 * 64, 10240, 32128, 64, 32
    attention = 4 * d * inner
    gated_ffn = 3 * d * ff
    encoder_layer = attention + gated_ffn + 2 * d
    decoder_layer = 2 * attention + gated_ffn + 3 * d
    expected = (
        vocab * d  # shared (tied with encoder.embed_tokens)
        + 24 * encoder_layer + heads * buckets + d  # encoder blocks, relative bias, final norm
        + decoder_layer + heads * buckets + d  # one decoder block, its relative bias, final norm
        + d  # one learned query
        + 3 * d + 3  # classifier
    )
    assert sum(p.numel() for p in model.parameters()) == expected
    assert 4.9e9 < expected < 5.1e9  # about half of flan-t5-xxl's 11.1B
    assert model.encoder.block[0].layer[1].DenseReluDense.wi_0.weight.device.type == "meta"
