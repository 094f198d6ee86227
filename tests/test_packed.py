"""The packed (padding-free) encoder against transformers' own T5 encoder on the same weights."""

from __future__ import annotations

import pytest
import torch
from transformers import T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Block

import t5cls
from t5cls.attention import CPU_PLAIN_MAX_KEYS
from t5cls.packed import can_pack, packed_encoder_forward
from tests.conftest import TINY, build_seq2seq

ATOL = 1e-5


def _inputs(pattern: str, batch: int = 4, length: int = 11, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, TINY["vocab_size"], (batch, length), generator=generator)
    lengths = [length, 7, 1, 4][:batch]
    attention_mask = torch.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        if pattern == "right":
            attention_mask[row, :n] = 1
        elif pattern == "left":
            attention_mask[row, length - n :] = 1
        else:  # "none": no padding
            attention_mask[row] = 1
    input_ids[attention_mask == 0] = 0
    return input_ids, attention_mask


@pytest.fixture(scope="module", params=["gated-gelu", "relu"])
def encoder(request, tmp_path_factory):
    """transformers' T5EncoderModel (flan-t5-like gated-GELU, or the original t5's ReLU), 3 layers."""
    path = tmp_path_factory.mktemp(f"encoder-{request.param}")
    build_seq2seq(seed=5, feed_forward_proj=request.param, num_layers=3).save_pretrained(path)
    return T5EncoderModel.from_pretrained(path, attn_implementation="sdpa").eval()


@pytest.mark.parametrize("pattern", ["right", "left", "none"])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_equals_transformers_encoder_at_real_tokens(encoder, pattern, grad):
    input_ids, attention_mask = _inputs(pattern)
    with torch.set_grad_enabled(grad):
        packed = packed_encoder_forward(encoder.encoder, input_ids, attention_mask)
        expected = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask.bool()
    torch.testing.assert_close(packed[real], expected[real], atol=ATOL, rtol=0)
    assert not packed[~real].any(), "padding positions are zeros"


def test_long_inputs_equal_too(encoder):
    # Past CPU_PLAIN_MAX_KEYS tokens the attention product runs on SDPA (t5cls.attention); a batch
    # with one long and one short text has both lengths' padding.
    input_ids, attention_mask = _inputs("right", batch=2, length=CPU_PLAIN_MAX_KEYS + 9)
    with torch.no_grad():
        packed = packed_encoder_forward(encoder.encoder, input_ids, attention_mask)
        expected = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask.bool()
    torch.testing.assert_close(packed[real], expected[real], atol=ATOL, rtol=0)


def test_inputs_embeds_are_used_and_left_untouched(encoder):
    input_ids, attention_mask = _inputs("none")
    embeds = encoder.encoder.embed_tokens(input_ids).detach()
    before = embeds.clone()
    with torch.no_grad():
        packed = packed_encoder_forward(encoder.encoder, attention_mask=attention_mask, inputs_embeds=embeds)
        expected = encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(packed, expected, atol=ATOL, rtol=0)
    assert torch.equal(embeds, before)


def test_no_attention_mask_means_no_padding(encoder):
    input_ids, attention_mask = _inputs("none")
    with torch.no_grad():
        torch.testing.assert_close(
            packed_encoder_forward(encoder.encoder, input_ids),
            packed_encoder_forward(encoder.encoder, input_ids, attention_mask),
            atol=0,
            rtol=0,
        )


def test_bf16_stays_close_to_fp32(encoder):
    input_ids, attention_mask = _inputs("right")
    bf16 = T5EncoderModel(encoder.config).eval()
    bf16.load_state_dict(encoder.state_dict())
    bf16 = bf16.to(torch.bfloat16)
    assert can_pack(bf16.encoder, dtype=torch.bfloat16)
    with torch.no_grad():
        packed = packed_encoder_forward(bf16.encoder, input_ids, attention_mask).float()
        reference = bf16(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
    real = attention_mask.bool()
    # Same bf16 rounding steps, in a different matmul shape: equal to bf16 precision.
    torch.testing.assert_close(packed[real], reference[real], atol=0.1, rtol=0.05)


def test_can_pack_only_where_it_computes_the_same(encoder):
    stack = encoder.encoder
    assert can_pack(stack, dtype=torch.float32)
    assert not can_pack(stack, dtype=torch.float16), "fp16: transformers clamps between layers"
    stack.train()
    try:
        assert not can_pack(stack, dtype=torch.float32), "dropout in training"
    finally:
        stack.eval()
    stack.config._attn_implementation = "eager"
    try:
        assert not can_pack(stack, dtype=torch.float32), "eager attention was asked for"
    finally:
        stack.config._attn_implementation = "sdpa"

    class WrappedBlock(T5Block):  # as FSDP2 or activation checkpointing rename a block's class
        pass

    block = stack.block[1]
    block.__class__ = WrappedBlock
    try:
        assert not can_pack(stack, dtype=torch.float32)
    finally:
        block.__class__ = T5Block


# --- inside T5ForClassification -------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier():
    source = build_seq2seq(seed=3)
    model = t5cls.T5ForClassification.from_t5(source, labels=["a", "b", "c"])
    return model.eval()


def _logits(model, input_ids, attention_mask, *, packed: bool, **kwargs):
    model.use_packed_encoder = packed
    try:
        with torch.no_grad():
            return model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
    finally:
        model.use_packed_encoder = True


@pytest.mark.parametrize("pattern", ["right", "left"])
def test_classifier_logits_equal_with_and_without_packing(classifier, pattern):
    input_ids, attention_mask = _inputs(pattern)
    torch.testing.assert_close(
        _logits(classifier, input_ids, attention_mask, packed=True),
        _logits(classifier, input_ids, attention_mask, packed=False),
        atol=ATOL,
        rtol=0,
    )


def test_classifier_packs_only_when_nothing_per_layer_is_asked_for(classifier):
    assert classifier._packed_encoder_applies(None, None)
    assert not classifier._packed_encoder_applies(True, None)
    assert not classifier._packed_encoder_applies(None, True)
    input_ids, attention_mask = _inputs("right")
    with torch.no_grad():
        output = classifier(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    assert output.hidden_states is not None and len(output.hidden_states) == classifier.config.num_layers + 1
    classifier.train()
    try:
        assert not classifier._packed_encoder_applies(None, None)
    finally:
        classifier.eval()


def test_multi_label_and_mean_pooling_models_pack_too():
    source = build_seq2seq(seed=4, num_layers=2)
    input_ids, attention_mask = _inputs("right")
    for kwargs in ({"labels": ["a", "b", "c"], "problem_type": "multi_label_classification"}, {"labels": ["a", "b"], "num_decoder_layers": 0}):
        model = t5cls.T5ForClassification.from_t5(source, **kwargs).eval()
        torch.testing.assert_close(
            _logits(model, input_ids, attention_mask, packed=True),
            _logits(model, input_ids, attention_mask, packed=False),
            atol=ATOL,
            rtol=0,
        )



@pytest.mark.parametrize("pattern", ["right", "left", "none"])
def test_umt5_encoder_each_layer_with_its_own_bias(pattern):
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(12)
    config = UMT5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_heads=4, dropout_rate=0.0,
                        feed_forward_proj="gated-gelu")
    encoder = UMT5EncoderModel(config).eval()
    encoder.set_attn_implementation("sdpa")
    assert can_pack(encoder.encoder, dtype=torch.float32)
    input_ids, attention_mask = _inputs(pattern)
    with torch.no_grad():
        packed = packed_encoder_forward(encoder.encoder, input_ids, attention_mask)
        expected = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask.bool()
    torch.testing.assert_close(packed[real], expected[real], atol=ATOL, rtol=0)
