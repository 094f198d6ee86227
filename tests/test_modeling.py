"""T5ForClassification against the plain transformers computation on the same weights."""

from __future__ import annotations

import pytest
import torch
from transformers import T5EncoderModel, T5Model

import t5cls
from tests.conftest import TINY, build_seq2seq, tiny_t5_config

ATOL = 1e-5


def _inputs(batch: int = 3, length: int = 9, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, TINY["vocab_size"], (batch, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 6:] = 0  # padding in the first row
    attention_mask[1, 4:] = 0
    input_ids[attention_mask == 0] = 0
    return input_ids, attention_mask


@pytest.fixture(scope="module")
def source():
    return build_seq2seq(seed=3)


def _classifier(source, **kwargs):
    model = t5cls.T5ForClassification.from_t5(source, **kwargs)
    torch.manual_seed(7)
    with torch.no_grad():
        if hasattr(model, "query_embeddings"):
            model.query_embeddings.weight.normal_()
        model.classifier.weight.normal_()
        model.classifier.bias.normal_()
    return model.eval()


def test_encoder_matches_transformers_t5_encoder_model(source, tmp_path):
    source.save_pretrained(tmp_path)
    reference = T5EncoderModel.from_pretrained(tmp_path).eval()
    model = _classifier(source, labels=["a", "b"])
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        ours = model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        theirs = reference(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_one_query_decoder_matches_transformers_decoder_block_0(source):
    """The pooled vector is what transformers' one-layer T5 decoder computes for that query at step 0."""
    model = _classifier(source, labels=["a", "b", "c"])
    reference = T5Model(tiny_t5_config(num_decoder_layers=1)).eval()
    reference.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith(("classifier", "query"))}, strict=False)
    input_ids, attention_mask = _inputs()
    query = model.query_embeddings.weight.unsqueeze(0).expand(3, -1, -1)  # (batch, 1, d_model)
    with torch.no_grad():
        decoded = reference(
            input_ids=input_ids, attention_mask=attention_mask, decoder_inputs_embeds=query
        ).last_hidden_state[:, 0]
        expected_logits = decoded @ model.classifier.weight.T + model.classifier.bias
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert logits.shape == (3, 3)
    torch.testing.assert_close(logits, expected_logits, atol=ATOL, rtol=0)


def test_multi_label_queries_attend_to_each_other_without_causal_mask(source):
    """Multi-label: one score per label from its own query; queries see each other (non-causal)."""
    model = _classifier(source, labels=["w", "x", "y", "z"], problem_type="multi_label_classification", num_decoder_layers=2)
    input_ids, attention_mask = _inputs()
    decoder_layers = T5Model(tiny_t5_config(num_decoder_layers=2)).eval()
    decoder_layers.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith(("classifier", "query"))}, strict=False)
    queries = model.query_embeddings.weight.unsqueeze(0).expand(3, -1, -1)  # (batch, 4, d_model)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        # transformers' decoder with an all-ones 4D self-attention mask (eager: additive zeros) is the
        # non-causal computation; its default causal mask is not.
        decoder_layers.config._attn_implementation = "eager"
        for module in decoder_layers.modules():
            if hasattr(module, "config"):
                module.config._attn_implementation = "eager"
        full = torch.zeros(3, 1, 4, 4)
        hidden = decoder_layers(
            input_ids=input_ids, attention_mask=attention_mask, decoder_inputs_embeds=queries, decoder_attention_mask=full
        ).last_hidden_state  # (batch, 4, d_model)
        causal = decoder_layers(
            input_ids=input_ids, attention_mask=attention_mask, decoder_inputs_embeds=queries
        ).last_hidden_state
    expected = (hidden * model.classifier.weight).sum(-1) + model.classifier.bias
    assert logits.shape == (3, 4)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    causal_logits = (causal * model.classifier.weight).sum(-1) + model.classifier.bias
    assert not torch.allclose(logits[:, 0], causal_logits[:, 0], atol=1e-4)


def test_mean_pooling_ignores_padding(source):
    model = _classifier(source, labels=["a", "b"], num_decoder_layers=0)
    assert not hasattr(model, "decoder")
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        hidden = model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).float()
        expected = model.classifier((hidden * mask).sum(1) / mask.sum(1))
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        # The padded first row alone, unpadded, gives the same logits.
        alone = model(input_ids=input_ids[:1, :6], attention_mask=attention_mask[:1, :6]).logits
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(alone, logits[:1], atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "problem_type,labels,expected_loss",
    [
        ("single_label_classification", torch.tensor([0, 2, 1]), torch.nn.functional.cross_entropy),
        ("multi_label_classification", torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0]]), torch.nn.functional.binary_cross_entropy_with_logits),
        ("regression", torch.tensor([0.5, -1.0, 2.0]), torch.nn.functional.mse_loss),
    ],
)
def test_loss_follows_problem_type(source, problem_type, labels, expected_loss):
    num_labels = 1 if problem_type == "regression" else 3
    model = _classifier(source, num_labels=num_labels, problem_type=problem_type)
    input_ids, attention_mask = _inputs()
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    assert output.logits.shape == (3, num_labels)
    target = labels.float() if problem_type != "single_label_classification" else labels
    logits = output.logits.squeeze(-1) if problem_type == "regression" else output.logits
    torch.testing.assert_close(output.loss, expected_loss(logits, target))
    output.loss.backward()
    assert model.query_embeddings.weight.grad is not None
    assert model.encoder.block[0].layer[0].SelfAttention.q.weight.grad is not None


def test_sdpa_and_eager_agree(source, tmp_path):
    model = _classifier(source, labels=["a", "b", "c", "d"], problem_type="multi_label_classification")
    model.save_pretrained(tmp_path)
    input_ids, attention_mask = _inputs()
    outputs = {}
    for implementation in ("sdpa", "eager"):
        loaded = t5cls.T5ForClassification.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        with torch.no_grad():
            outputs[implementation] = loaded(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], atol=ATOL, rtol=0)


def test_set_attn_implementation_reaches_the_query_decoder(source):
    model = _classifier(source, labels=["a", "b", "c"], problem_type="multi_label_classification")
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        sdpa = model(input_ids=input_ids, attention_mask=attention_mask).logits
        model.set_attn_implementation("eager")
        eager = model(input_ids=input_ids, attention_mask=attention_mask).logits
    attention = model.decoder.block[0].layer[0].SelfAttention
    assert attention.config._attn_implementation == "eager" == model.encoder.config._attn_implementation
    torch.testing.assert_close(eager, sdpa, atol=ATOL, rtol=0)


def test_gradient_checkpointing_gives_the_same_gradients(source):
    model = _classifier(source, labels=["a", "b"])
    model.train()
    input_ids, attention_mask = _inputs()
    labels = torch.tensor([0, 1, 1])
    model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
    plain = model.decoder.block[0].layer[1].EncDecAttention.k.weight.grad.clone()
    model.zero_grad()
    # What Trainer calls for gradient_checkpointing=True (transformers renamed it in 5.x; older 5.x
    # releases only have the gradient_ name).
    getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    assert model.encoder.block[0].gradient_checkpointing
    model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
    torch.testing.assert_close(model.decoder.block[0].layer[1].EncDecAttention.k.weight.grad, plain, atol=1e-6, rtol=1e-5)


def test_transformers_integration_attributes():
    model_cls = t5cls.T5ForClassification
    assert model_cls._no_split_modules == ["T5Block"]
    assert model_cls._keep_in_fp32_modules == ["wo"]
    assert model_cls.supports_gradient_checkpointing and model_cls._supports_sdpa


def test_kept_weights_keep_their_t5_keys(source):
    keys = set(_classifier(source, labels=["a", "b"]).state_dict())
    assert {"shared.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight", "decoder.block.0.layer.1.EncDecAttention.q.weight",
            "decoder.final_layer_norm.weight", "query_embeddings.weight", "classifier.weight", "classifier.bias"} <= keys
    assert not any(k.startswith("decoder.block.1") or k.startswith("lm_head") for k in keys)


def test_built_from_a_config_gets_t5_initialisation():
    """From scratch (no checkpoint), every layer gets T5's scaled init, as transformers' T5 does."""
    from transformers import T5ForConditionalGeneration

    shape = dict(vocab_size=1000, d_model=256, d_kv=32, d_ff=512, num_layers=2, num_heads=8)
    torch.manual_seed(0)
    model = t5cls.T5ForClassification(t5cls.T5ClassificationConfig(**shape, num_labels=3))
    reference = T5ForConditionalGeneration(tiny_t5_config(**shape, feed_forward_proj="relu"))
    ours_decoder, their_decoder = model.decoder.block[0].layer, reference.decoder.block[0].layer
    for name in ("0.SelfAttention.q", "0.SelfAttention.o", "1.EncDecAttention.k", "2.DenseReluDense.wi", "2.DenseReluDense.wo"):
        ours = ours_decoder.get_submodule(name).weight.std().item()
        theirs = their_decoder.get_submodule(name).weight.std().item()
        assert ours == pytest.approx(theirs, rel=0.1), name
    assert model.classifier.weight.std().item() == pytest.approx(256**-0.5, rel=0.1)
    assert torch.count_nonzero(model.classifier.bias) == 0
    assert model.query_embeddings.weight.std().item() == pytest.approx(1.0, rel=0.2)
