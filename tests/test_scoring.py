"""LabelScorer: exactness against brute force, first-token mode, normalisation, calibration, bad input, CLI.

The judge is the plain transformers computation: ``T5ForConditionalGeneration(input_ids,
labels=label_ids)`` run one (text, label) pair at a time, summing the log-softmax of every label
token and the closing ``</s>``.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax

from t5cls import InputError, LabelScorer
from t5cls.calibration import CONTENT_FREE_INPUTS
from t5cls.export import (
    FullRangeDynamicLinear,
    FullRangeTokenScaledDynamicLinear,
    TokenScaledDynamicLinear,
    _full_range_activations,
    quantize_linear_int8,
)
from t5cls.scoring import build_label_trie, fill_template, length_normalize, template_fields
from tests.conftest import build_seq2seq, sample_texts

# Multi-token labels ("entailment", "Sci/Tech"), and labels sharing a prefix ("Sci" / "Sci/Tech",
# "not" / "not good"); test_labels_cover_every_trie_shape checks that the test tokenizer makes them so.
LABELS = ["entailment", "neutral", "contradiction", "Sci/Tech", "Sci", "not", "not good"]
TEMPLATE = "topic: {text}"


def brute_force(model, tokenizer, prompts, labels) -> np.ndarray:
    """log P(label | prompt) one pair at a time through T5ForConditionalGeneration(input_ids, labels=...)."""
    out = np.zeros((len(prompts), len(labels)))
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            input_ids = tokenizer(prompt, return_tensors="pt").input_ids
            for j, label in enumerate(labels):
                label_ids = tokenizer(label, return_tensors="pt").input_ids  # label tokens + </s>
                logits = model(input_ids=input_ids, labels=label_ids).logits
                out[i, j] = logits.log_softmax(-1)[0].gather(1, label_ids[0][:, None]).sum().item()
    return out


@pytest.fixture(scope="module")
def texts():
    return sample_texts(4) + ["", "short one"]


@pytest.fixture(scope="module")
def scorer(tiny_t5_dir):
    return LabelScorer(tiny_t5_dir, labels=["positive", "negative", "not good"], template="review: {text}", show_progress_bar=False)


# --- exactness -----------------------------------------------------------------------------


# Labels that are one piece of the test tokenizer (each then decoded as one trie node).
SINGLE_TOKEN_LABELS = ["alarm", "rain", "song"]


def test_labels_cover_every_trie_shape(tiny_tokenizer):
    ids = {label: tiny_tokenizer(label, add_special_tokens=False).input_ids for label in LABELS + SINGLE_TOKEN_LABELS}
    assert len(ids["entailment"]) >= 3 and len(ids["Sci/Tech"]) >= 3
    assert ids["Sci/Tech"][: len(ids["Sci"])] == ids["Sci"] and ids["not good"][: len(ids["not"])] == ids["not"]
    assert all(len(ids[label]) == 1 for label in SINGLE_TOKEN_LABELS)


def test_real_t5_vocabulary_facts(real_t5_tokenizer):
    """What the docs and the README's examples say about T5's own vocabulary."""
    def ids(label):
        return real_t5_tokenizer(label, add_special_tokens=False).input_ids

    assert ids("positive") == [1465] and ids("negative") == [2841] and len(ids("neutral")) == 1
    assert len(ids("entailment")) == 4 and len(ids("Sci/Tech")) == 3
    assert ids("Sci/Tech")[:1] == ids("Sci") and ids("not good")[:1] == ids("not")
    assert (real_t5_tokenizer.pad_token_id, real_t5_tokenizer.eos_token_id, real_t5_tokenizer.unk_token_id) == (0, 1, 2)
    assert real_t5_tokenizer.convert_tokens_to_ids("<extra_id_0>") == 32099


def test_real_vocabulary_log_likelihoods_equal_brute_force(real_t5_tokenizer):
    # The same exactness as below, with T5's 32100-token vocabulary and its multi-token labels.
    model = build_seq2seq(seed=3, initializer_factor=0.5, vocab_size=32128)
    texts = ["The market rallied on Friday.", "A short one"]
    scorer = LabelScorer((model, real_t5_tokenizer), labels=LABELS, template=TEMPLATE, show_progress_bar=False)
    expected = brute_force(model, real_t5_tokenizer, [TEMPLATE.format(text=t) for t in texts], LABELS)
    np.testing.assert_allclose(scorer.log_likelihoods(texts), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["flan-t5", "t5"])
def test_log_likelihoods_equal_brute_force_fp32(kind, tiny_tokenizer, texts):
    # initializer_factor 0.4 keeps the random logits in a trained model's range (label log-likelihoods
    # of -14 to -66); at 1.0 they reach -130, and near -70 one fp32 ulp is already 8e-6, so rounding
    # alone (the brute force batched vs single) passes 1e-5. The fp64 test below checks the same code to 1e-9.
    shape = {} if kind == "flan-t5" else dict(feed_forward_proj="relu", tie_word_embeddings=True)
    model = build_seq2seq(seed=3, initializer_factor=0.4, **shape)
    # A small token budget splits the texts into several batches: order and padding are exercised.
    scorer = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, batch_tokens=96, show_progress_bar=False)
    got = scorer.log_likelihoods(texts)
    expected = brute_force(model, tiny_tokenizer, [TEMPLATE.format(text=t) for t in texts], LABELS)
    assert got.shape == (len(texts), len(LABELS))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_t5_dir", "tiny_t5_relu_dir"])
def test_log_likelihoods_equal_brute_force_fp64_from_checkpoint(fixture, request, tiny_tokenizer, texts):
    # Loaded through the real path (safetensors / pytorch_model.bin); in fp64 the only differences
    # left are T5LayerNorm's fp32 variance, so agreement to 1e-9 shows the tree decoding is exact.
    scorer = LabelScorer(request.getfixturevalue(fixture), labels=LABELS, template=TEMPLATE, dtype=torch.float64, show_progress_bar=False)
    got = scorer.log_likelihoods(texts[:3])
    expected = brute_force(scorer.model, tiny_tokenizer, [TEMPLATE.format(text=t) for t in texts[:3]], LABELS)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_packed_encoder_equals_the_padded_encoder_fp32(tiny_tokenizer, texts):
    # Texts of many lengths in batches of several: the padding-free encoder (t5cls.packed) must give
    # what transformers' padded forward gives, for both FFN kinds (gated-GELU and ReLU).
    for seed, shape in ((5, {}), (6, dict(feed_forward_proj="relu", tie_word_embeddings=True))):
        model = build_seq2seq(seed=seed, initializer_factor=0.5, **shape)
        scorer = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, batch_tokens=160, show_progress_bar=False)
        assert scorer._packs()
        packed = scorer.log_likelihoods(texts)
        scorer.use_packed_encoder = False
        assert not scorer._packs()
        np.testing.assert_allclose(packed, scorer.log_likelihoods(texts), rtol=0, atol=1e-5)


def test_tree_blocks_equal_transformers_blocks(tiny_tokenizer, texts):
    # The decoder blocks as LabelScorer runs them over the tree (t5cls.attention's kernel, block 0's
    # self-attention for one row, projected cross-attention keys and values) must give what
    # transformers' T5Block gives on the same tree, for both FFN kinds, over several batches.
    for seed, shape in ((7, {}), (8, dict(feed_forward_proj="relu", tie_word_embeddings=True))):
        model = build_seq2seq(seed=seed, initializer_factor=0.5, **shape)
        scorer = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, batch_tokens=128, show_progress_bar=False)
        assert scorer._runs_tree_blocks() and not scorer._factors_cross_attention()
        ours = scorer.log_likelihoods(texts)
        scorer.use_tree_blocks = False
        assert not scorer._runs_tree_blocks()
        np.testing.assert_allclose(ours, scorer.log_likelihoods(texts), rtol=0, atol=1e-5)


def test_factored_cross_attention_equals_transformers_blocks(tiny_tokenizer, texts):
    # Small trees (the first-token mode, single-token labels) read the encoder states without keys and
    # values; the result must be what transformers' T5Block computes. d_kv 16 lets a 4-node tree qualify.
    for seed, shape in ((7, {}), (8, dict(feed_forward_proj="relu", tie_word_embeddings=True))):
        model = build_seq2seq(seed=seed, initializer_factor=0.5, d_kv=16, **shape)
        for labels, mode in ((["true", "false"], "first_token"), (SINGLE_TOKEN_LABELS, "full")):
            scorer = LabelScorer((model, tiny_tokenizer), labels=labels, mode=mode, batch_tokens=128, show_progress_bar=False)
            assert scorer._factors_cross_attention()
            factored = scorer.log_likelihoods(texts)
            scorer.use_factored_cross_attention = False  # projected keys and values, in the same tree blocks
            np.testing.assert_allclose(factored, scorer.log_likelihoods(texts), rtol=0, atol=1e-5)
            scorer.use_tree_blocks = False
            assert not scorer._factors_cross_attention()
            np.testing.assert_allclose(factored, scorer.log_likelihoods(texts), rtol=0, atol=1e-5)
        # A large tree keeps the projected keys and values (cheaper there).
        assert not LabelScorer((model, tiny_tokenizer), labels=LABELS, show_progress_bar=False)._factors_cross_attention()


def test_eager_attention_gives_the_same_log_likelihoods(tiny_tokenizer, texts):
    model = build_seq2seq(seed=4, initializer_factor=0.5)
    kwargs = dict(labels=LABELS[:4], template=TEMPLATE, show_progress_bar=False)
    sdpa = LabelScorer((model, tiny_tokenizer), **kwargs).log_likelihoods(texts[:3])
    model.set_attn_implementation("eager")
    eager = LabelScorer((model, tiny_tokenizer), **kwargs).log_likelihoods(texts[:3])
    np.testing.assert_allclose(eager, sdpa, atol=1e-5)


def test_the_log_prob_kernel_benchmark_runs():
    # benchmarks/log_prob_kernels.py checks LabelScorer's log_softmax against logits - logsumexp before it times them.
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "log_prob_kernels.py"
    command = [sys.executable, str(script), "--repeats", "1", "--threads", "1", "--texts", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| log_softmax, gathered (LabelScorer) |" in result.stdout and "log_softmax saves" in result.stdout


def test_bf16_follows_fp32(tiny_tokenizer, texts):
    # bf16 is the CUDA default; on CPU it checks the mask and bias dtypes, not the speed.
    labels = ["entailment", "neutral", "Sci/Tech"]
    fp32 = LabelScorer((build_seq2seq(seed=3, initializer_factor=0.5), tiny_tokenizer), labels=labels, show_progress_bar=False)
    bf16 = LabelScorer((build_seq2seq(seed=3, initializer_factor=0.5), tiny_tokenizer), labels=labels, dtype="bfloat16", show_progress_bar=False)
    assert bf16.model.dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.log_likelihoods(texts[:3]), fp32.log_likelihoods(texts[:3]), rtol=0.01, atol=0.1)


def test_multi_field_template_fills_from_dicts(scorer):
    pairs = [{"premise": "A man plays guitar.", "hypothesis": "Someone makes music."}, {"premise": "", "hypothesis": "x"}]
    template = "premise: {premise} hypothesis: {hypothesis}"
    nli = LabelScorer((scorer.model, scorer.tokenizer), labels=scorer.labels, template=template, show_progress_bar=False)
    plain = LabelScorer((scorer.model, scorer.tokenizer), labels=scorer.labels, show_progress_bar=False)
    np.testing.assert_array_equal(nli.log_likelihoods(pairs), plain.log_likelihoods([template.format(**p) for p in pairs]))
    assert isinstance(nli.predict(pairs[0]), str)


# --- int8 ----------------------------------------------------------------------------------


def test_int8_quantises_a_copy_and_follows_fp32(tiny_tokenizer, texts):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    model = build_seq2seq(seed=3, initializer_factor=0.5)
    fp32 = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, show_progress_bar=False)
    int8 = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, quantize="int8", show_progress_bar=False)
    assert not any(isinstance(m, DynamicLinear) for m in model.modules())  # the caller's model is untouched
    layers = dict(int8.model.named_modules())
    assert isinstance(layers["encoder.block.0.layer.1.DenseReluDense.wi_0"], DynamicLinear)
    assert isinstance(layers["decoder.block.1.layer.1.EncDecAttention.k"], DynamicLinear)
    assert type(layers["lm_head"]) is torch.nn.Linear  # the vocabulary projection stays fp32
    assert int8._packs()  # int8 layers run inside the packed encoder
    expected, got = fp32.log_likelihoods(texts), int8.log_likelihoods(texts)
    assert not np.array_equal(got, expected)
    # Tiny random weights: int8 rounding moves log-likelihoods of -20 to -60 by well under 1.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1.0)


def test_int8_weights_are_per_channel_and_activations_full_range_where_vnni():
    int8 = quantize_linear_int8(build_seq2seq(seed=3))
    block = int8.encoder.block[0]
    layer = block.layer[1].DenseReluDense.wi_0
    assert layer.weight().qscheme() == torch.per_channel_affine  # one scale per output row
    assert isinstance(layer, FullRangeDynamicLinear) == _full_range_activations()
    # One activation scale per token where no RMSNorm precedes the input: attention output, FFN output.
    assert not isinstance(layer, TokenScaledDynamicLinear)
    for token_scaled in (block.layer[0].SelfAttention.o, block.layer[1].DenseReluDense.wo, int8.decoder.block[0].layer[1].EncDecAttention.o):
        assert isinstance(token_scaled, TokenScaledDynamicLinear)
        assert isinstance(token_scaled, FullRangeTokenScaledDynamicLinear) == _full_range_activations()


@pytest.mark.parametrize("bias", [False, True])
def test_int8_token_scales_keep_an_outlier_token_from_coarsening_the_others(bias):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    torch.manual_seed(0)
    dense = _with_qconfig(torch.nn.Linear(256, 64, bias=bias))
    x = torch.randn(16, 256)
    outlier = x.clone()
    outlier[0] *= 1000.0  # one token far larger than the rest, as trained T5 models have
    token_scaled = TokenScaledDynamicLinear.from_float(dense)
    per_call = DynamicLinear.from_float(dense)

    def error(layer: torch.nn.Module, inputs: torch.Tensor) -> float:
        return (layer(inputs)[1:] - dense(inputs)[1:]).abs().max().item()  # the ordinary tokens only

    # Per token, the ordinary tokens round as they did without the outlier; with one scale per call
    # their activations fall into a few of the 256 levels.
    assert error(token_scaled, outlier) < 1.5 * error(token_scaled, x)
    assert error(per_call, outlier) > 20 * error(token_scaled, outlier)
    # The scales cancel: the outlier token itself comes out at its fp32 value's relative precision.
    torch.testing.assert_close(token_scaled(outlier)[0], dense(outlier)[0], rtol=0, atol=2e-2 * dense(outlier)[0].abs().max().item())


def test_int8_token_scales_read_the_bias_once_and_follow_a_new_one():
    torch.manual_seed(0)
    dense = _with_qconfig(torch.nn.Linear(64, 32))
    layer = TokenScaledDynamicLinear.from_float(dense)
    x = torch.randn(8, 64)
    state = set(layer.state_dict())
    first = layer(x)
    torch.testing.assert_close(first, dense(x), rtol=0, atol=0.05)
    assert set(layer.state_dict()) == state and not dict(layer.named_parameters())  # the kept bias is no parameter
    weight, _ = layer._weight_bias()
    layer.set_weight_bias(weight, torch.full((32,), 10.0))  # the bias it kept from the first call must go
    torch.testing.assert_close(layer(x), first - dense.bias + 10.0, rtol=0, atol=1e-4)
    layer.set_weight_bias(weight, None)
    torch.testing.assert_close(layer(x), first - dense.bias, rtol=0, atol=1e-4)
    layer.load_state_dict(TokenScaledDynamicLinear.from_float(dense).state_dict())  # packs anew, as set_weight_bias
    torch.testing.assert_close(layer(x), first, rtol=0, atol=1e-4)


@pytest.mark.skipif(not _full_range_activations(), reason="needs a CPU with AVX512-VNNI (int32 accumulation)")
def test_full_range_int8_does_not_overflow_and_halves_the_rounding():
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    torch.manual_seed(0)
    # Every weight at +127 and every activation at 255 after quantisation: the pair sums that would
    # overflow int16 (2 x 255 x 127 > 32767) come out right, so the CPU accumulates in int32.
    worst = torch.nn.Linear(512, 8, bias=False)
    torch.nn.init.constant_(worst.weight, 1.0)
    x = torch.ones(4, 512)
    x[:, 0] = 0.0
    for cls in (FullRangeDynamicLinear, FullRangeTokenScaledDynamicLinear):
        got = cls.from_float(_with_qconfig(worst))(x)
        torch.testing.assert_close(got, x @ worst.weight.T, rtol=1e-2, atol=0)
    # On random shapes the 8th bit roughly halves the error against fp32.
    dense = torch.nn.Linear(512, 512)
    x = torch.randn(64, 512)
    errors = [(cls.from_float(_with_qconfig(dense))(x) - dense(x)).abs().mean().item() for cls in (DynamicLinear, FullRangeDynamicLinear)]
    assert errors[1] < 0.75 * errors[0]


def _with_qconfig(linear: torch.nn.Linear) -> torch.nn.Linear:
    from torch.ao.quantization import per_channel_dynamic_qconfig

    linear.qconfig = per_channel_dynamic_qconfig
    return linear


def test_int8_packed_equals_int8_padded(tiny_tokenizer, texts):
    # The same int8 layers through the packed encoder and through transformers' padded forward.
    model = build_seq2seq(seed=6, initializer_factor=0.5, feed_forward_proj="relu", tie_word_embeddings=True)
    scorer = LabelScorer((model, tiny_tokenizer), labels=LABELS, template=TEMPLATE, quantize="int8", batch_tokens=160, show_progress_bar=False)
    packed = scorer.log_likelihoods(texts)
    scorer.use_packed_encoder = False
    # The attention and FFN outputs quantise per token and the RMS-normalised inputs of the others
    # leave padding rows little say in a call's scale (0.0 apart on either fp32 kernel, AVX-512 EPYC;
    # all per call: 3e-3). The two forwards sum in different orders, so an activation that sits on
    # an int8 rounding boundary can round the other way: when the test tokenizer still changed from
    # process to process, some draws put 4 of 42 values 2.2e-3 apart, one rounding step, 50x less
    # than int8's own change from fp32. The bound allows that one step.
    np.testing.assert_allclose(packed, scorer.log_likelihoods(texts), rtol=0, atol=5e-3)


def test_int8_from_a_checkpoint_directory(tiny_t5_relu_dir, texts):
    scorer = LabelScorer(tiny_t5_relu_dir, labels=LABELS, template=TEMPLATE, quantize="int8", show_progress_bar=False)
    assert scorer.device.type == "cpu" and scorer.quantize == "int8"
    assert scorer.predict_proba(texts[:2]).shape == (2, len(LABELS))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(quantize="int4"), "quantize='int4' is not supported"),
        # Without a CUDA GPU the device itself is refused first; with one, the int8/CUDA conflict.
        (dict(quantize="int8", device="cuda"), "runs on CPU|device='cuda' but"),
        (dict(quantize="int8", dtype="bfloat16"), "float32"),
    ],
)
def test_bad_quantize_options(scorer, kwargs, match):
    with pytest.raises(InputError, match=match):
        LabelScorer((scorer.model, scorer.tokenizer), labels=["a", "b"], show_progress_bar=False, **kwargs)


def test_int8_refuses_a_bf16_model(tiny_tokenizer):
    model = build_seq2seq(seed=3).to(torch.bfloat16)
    with pytest.raises(InputError, match="int8 quantisation runs on CPU in fp32"):
        LabelScorer((model, tiny_tokenizer), labels=["a", "b"], quantize="int8", show_progress_bar=False)


# --- the label trie ------------------------------------------------------------------------


def test_trie_shares_prefixes_and_sums_paths():
    # "not" = [59] and "not good" = [59, 207], each closed by </s> = 1.
    trie = build_label_trie([[59, 1], [59, 207, 1]], start_token_id=0)
    assert trie.tokens == [0, 59, 207] and trie.depths == [0, 1, 2]
    assert list(zip(trie.edge_nodes, trie.edge_tokens)) == [(0, 59), (1, 1), (1, 207), (2, 1)]
    np.testing.assert_array_equal(trie.incidence, [[1, 1], [1, 0], [0, 1], [0, 1]])
    np.testing.assert_array_equal(trie.ancestors, [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_single_token_labels_need_one_decoder_pass_of_one_node_per_label(tiny_tokenizer):
    model = build_seq2seq(seed=0)
    scorer = LabelScorer((model, tiny_tokenizer), labels=SINGLE_TOKEN_LABELS, show_progress_bar=False)
    assert scorer.trie.num_nodes == 4  # the start token and one leaf per label (which predicts </s>)
    first = LabelScorer((model, tiny_tokenizer), labels=SINGLE_TOKEN_LABELS, mode="first_token", show_progress_bar=False)
    assert first.trie.num_nodes == 1  # one decoder position


# --- first-token mode ----------------------------------------------------------------------


def test_first_token_mode_is_the_restricted_softmax_of_one_decoder_step(tiny_tokenizer, texts):
    model = build_seq2seq(seed=5)
    labels = ["alarm", "song", "Sci/Tech"]  # two one-piece labels and Sci/Tech's first token
    scorer = LabelScorer((model, tiny_tokenizer), labels=labels, template="sst2 sentence: {text}", mode="first_token", show_progress_bar=False)
    first_ids = [tiny_tokenizer(label, add_special_tokens=False).input_ids[0] for label in labels]
    expected = []
    with torch.no_grad():
        for text in texts:
            input_ids = tiny_tokenizer(f"sst2 sentence: {text}", return_tensors="pt").input_ids
            logits = model(input_ids=input_ids, decoder_input_ids=torch.tensor([[0]])).logits[0, 0]
            expected.append(torch.softmax(logits[first_ids], dim=-1).numpy())
    np.testing.assert_allclose(scorer.predict_proba(texts), np.array(expected), atol=1e-6)


# --- normalisation and calibration against their formulas ----------------------------------


def test_length_normalize_formula():
    np.testing.assert_allclose(length_normalize(np.array([[-6.0, -3.0], [-2.0, -9.0]]), [3, 1.5]), [[-2.0, -2.0], [-2 / 3, -6.0]])


def test_normalize_mean_and_chars_divide_by_the_documented_lengths(scorer, texts):
    model, tokenizer, labels = scorer.model, scorer.tokenizer, ["alarm", "not good", "entailment"]
    ll = LabelScorer((model, tokenizer), labels=labels, template=scorer.template, show_progress_bar=False).log_likelihoods(texts)
    tokens = [len(tokenizer(label).input_ids) for label in labels]  # the label's tokens and its </s>
    assert tokens == [2, 5, 5]  # lengths that differ, so that dividing by the wrong one shows
    for normalize, lengths in (("mean", tokens), ("chars", [5, 8, 10])):
        other = LabelScorer((model, tokenizer), labels=labels, template=scorer.template, normalize=normalize, show_progress_bar=False)
        np.testing.assert_allclose(other.scores(texts), ll / np.array(lengths), atol=1e-9)
        np.testing.assert_allclose(other.predict_proba(texts), softmax(ll / np.array(lengths), axis=1), atol=1e-9)


def test_contextual_calibration_divides_by_the_content_free_prior(scorer, texts):
    model, tokenizer = scorer.model, scorer.tokenizer
    calibrated = LabelScorer((model, tokenizer), labels=scorer.labels, template=scorer.template, calibrate="contextual", show_progress_bar=False)
    p_cf = softmax(scorer.log_likelihoods(list(CONTENT_FREE_INPUTS)), axis=1).mean(axis=0)
    q = scorer.predict_proba(texts) / p_cf
    np.testing.assert_allclose(calibrated.predict_proba(texts), q / q.sum(axis=1, keepdims=True), atol=1e-9)


def test_domain_pmi_subtracts_the_empty_prompt(scorer, texts):
    model, tokenizer = scorer.model, scorer.tokenizer
    pmi = LabelScorer((model, tokenizer), labels=scorer.labels, template=scorer.template, calibrate="domain_pmi", show_progress_bar=False)
    domain = scorer.log_likelihoods("")[0]  # "review: " -- the template with the input removed
    np.testing.assert_allclose(pmi.scores(texts), scorer.log_likelihoods(texts) - domain, atol=1e-9)


def test_predict_proba_predict_entropy_agree(scorer, texts):
    proba = scorer.predict_proba(texts)
    assert proba.shape == (len(texts), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba, softmax(scorer.log_likelihoods(texts), axis=1), atol=1e-12)
    assert scorer.predict(texts) == [scorer.labels[j] for j in proba.argmax(axis=1)]
    assert scorer.predict(texts[0]) == scorer.labels[int(proba[0].argmax())]
    np.testing.assert_allclose(scorer.entropy(texts), -(proba * np.log(proba)).sum(axis=1), atol=1e-9)
    assert scorer.log_likelihoods([]).shape == (0, 3)


# --- bad input -----------------------------------------------------------------------------


def test_template_and_input_field_mismatches_are_clear_errors(scorer):
    assert template_fields("premise: {premise} hypothesis: {hypothesis}") == ["premise", "hypothesis"]
    with pytest.raises(ValueError, match=r"does not use.*\{hypothesis\}"):
        scorer.log_likelihoods([{"text": "ok", "hypothesis": "extra"}])  # a field the template lacks
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['text'\]"):
        scorer.log_likelihoods([{"premise": "no text key"}])  # a field the input lacks
    with pytest.raises(ValueError, match="pass a dict with keys"):
        fill_template("{premise} {hypothesis}", ["premise", "hypothesis"], ["a plain string"])
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        scorer.log_likelihoods(["fine", 3])
    with pytest.raises(TypeError, match="must be strings"):
        scorer.log_likelihoods({"text": None})


@pytest.mark.parametrize(
    ("template", "match"),
    [("no field here", "has no field"), ("{} is positional", "named fields"), ("{text!r}", "named fields"), ("{text", "malformed")],
)
def test_bad_templates(scorer, template, match):
    with pytest.raises(ValueError, match=match):
        LabelScorer((scorer.model, scorer.tokenizer), labels=["a", "b"], template=template)


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        (["positive", ""], {}, "non-empty"),
        (["positive", "   "], {}, "non-empty"),
        (["positive", "negative", "positive"], {}, "duplicates"),
        ([], {}, "empty"),
        ("positive,negative", {}, "list of strings"),
        (["not", "not good"], {"mode": "first_token"}, "same token"),
        (["a", "b"], {"normalize": "max"}, "normalize"),
        (["a", "b"], {"calibrate": "platt"}, "calibrate"),
        (["a", "b"], {"mode": "greedy"}, "mode"),
        (["a", "b"], {"mode": "first_token", "normalize": "chars"}, "normalize='sum'"),
    ],
)
def test_bad_labels_and_options(scorer, labels, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LabelScorer((scorer.model, scorer.tokenizer), labels=labels, **kwargs)


def test_one_label_scores_but_has_no_distribution(scorer):
    single = LabelScorer((scorer.model, scorer.tokenizer), labels=["positive"], show_progress_bar=False)
    assert single.log_likelihoods(["fine"]).shape == (1, 1)
    with pytest.raises(ValueError, match="at least 2 labels"):
        single.predict_proba(["fine"])


def test_classifier_checkpoint_is_refused(tiny_classifier_dir, tiny_tokenizer):
    with pytest.raises(ValueError, match="t5cls classifier.*t5cls.Classifier"):
        LabelScorer(tiny_classifier_dir, labels=["negative", "positive"])
    import t5cls

    classifier = t5cls.T5ForClassification.from_pretrained(tiny_classifier_dir)
    with pytest.raises(ValueError, match="Classifier"):
        LabelScorer((classifier, tiny_tokenizer), labels=["negative", "positive"])


def test_encoder_only_checkpoint_is_refused(tmp_path, tiny_tokenizer):
    from transformers import T5EncoderModel

    from tests.conftest import tiny_t5_config

    T5EncoderModel(tiny_t5_config()).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="lacks .* weight"):
        LabelScorer(tmp_path, labels=["a", "b"])


def test_missing_checkpoint_and_missing_tokenizer(tmp_path, scorer):
    with pytest.raises(FileNotFoundError):
        LabelScorer(tmp_path / "nope", labels=["a", "b"])
    with pytest.raises(FileNotFoundError, match="no config.json"):
        LabelScorer(tmp_path, labels=["a", "b"])
    with pytest.raises(ValueError, match="tokenizer"):
        LabelScorer(scorer.model, labels=["a", "b"])


# --- CLI -----------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "t5cls.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_score_writes_label_probabilities_and_entropy(tiny_t5_dir, tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text("premise\thypothesis\nA man plays.\tSomeone plays.\nIt rains.\tThe sun shines.\n")
    out = tmp_path / "scores.csv"
    result = _cli(
        "score", str(tiny_t5_dir), str(data), "--labels", "entailment,neutral,contradiction",
        "--template", "premise: {premise} hypothesis: {hypothesis}", "--calibrate", "contextual", "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and list(rows[0]) == [
        "premise", "hypothesis", "label", "p_entailment", "p_neutral", "p_contradiction", "entropy",
    ]  # fmt: skip
    for row in rows:
        probs = [float(row[f"p_{name}"]) for name in ("entailment", "neutral", "contradiction")]
        assert abs(sum(probs) - 1) < 1e-6 and row["label"] in ("entailment", "neutral", "contradiction")
        assert 0 <= float(row["entropy"]) <= np.log(3) + 1e-9



def test_cli_score_bad_input_is_one_line_exit_2(tiny_t5_dir, tmp_path, capsys):
    from t5cls.cli import main

    data = tmp_path / "pairs.csv"
    data.write_text("premise,hypothesis\nA man plays.,Someone plays.\n")
    assert main(["score", str(tiny_t5_dir), str(data), "--labels", "yes,no"]) == 2  # the template needs 'text'
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column(s) ['text']" in err and "premise" in err
    assert main(["score", str(tiny_t5_dir), str(data), "--labels", "yes,yes", "--template", "{premise}|{hypothesis}"]) == 2
    assert "duplicates" in capsys.readouterr().err


def test_umt5_log_likelihoods_equal_brute_force(t5_tokenizer, texts):
    from transformers import UMT5Config, UMT5ForConditionalGeneration

    torch.manual_seed(13)
    config = UMT5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0,
                        feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0, initializer_factor=0.5)
    model = UMT5ForConditionalGeneration(config).eval()
    scorer = LabelScorer((model, t5_tokenizer), labels=LABELS, template=TEMPLATE, batch_tokens=96, show_progress_bar=False)
    assert scorer._packs()  # UMT5's encoder runs packed too
    expected = brute_force(model, t5_tokenizer, [TEMPLATE.format(text=t) for t in texts], LABELS)
    # These log-likelihoods reach -105, where one fp32 step is 7.6e-6: 1e-5 plus a relative 1e-7
    # (about one more step) allows the summation order of another CPU's kernels (AVX2: 1.14e-5 once).
    np.testing.assert_allclose(scorer.log_likelihoods(texts), expected, rtol=1e-7, atol=1e-5)


def test_training_mode_without_dropout_gives_the_evaluation_scores(t5_tokenizer, texts):
    # In training the tree runs at full batch (no shared block 0) and through the blocks' own FFN
    # layers (UMT5) or transformers' T5Block (T5): with dropout 0 that must change nothing.
    from transformers import UMT5Config, UMT5ForConditionalGeneration

    torch.manual_seed(13)
    umt5 = UMT5ForConditionalGeneration(
        UMT5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0,
                   feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
    )
    for model in (umt5, build_seq2seq(seed=3, initializer_factor=0.5, vocab_size=32128, dropout_rate=0.0)):
        scorer = LabelScorer((model, t5_tokenizer), labels=LABELS, template=TEMPLATE, batch_tokens=96, show_progress_bar=False)
        evaluation = scorer.log_likelihoods(texts[:4])
        scorer.model.train()
        assert scorer._runs_tree_blocks() == (model is umt5)
        np.testing.assert_allclose(scorer.log_likelihoods(texts[:4]), evaluation, rtol=1e-7, atol=1e-5)
