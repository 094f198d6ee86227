"""T5ForClassification: the T5 encoder, a few T5 decoder layers fed learned queries, and a linear head.

A full T5 spends half its parameters on a decoder that a classifier never needs. Here the
encoder runs as in T5, then the first ``num_decoder_layers`` pretrained decoder layers attend
from a handful of learned query vectors to the encoder output, and ``classifier`` maps each
pooled vector to class logits. Layer names are transformers' own (``encoder.block.N...``,
``decoder.block.0...``), so pretrained T5 weights keep their keys and everything transformers
does for T5 (SDPA, gradient checkpointing, device maps, FSDP wrapping) applies unchanged.

In evaluation, the encoder runs on real tokens only (``.packed``), which gives the same outputs as
transformers' padded forward for less work; set ``model.use_packed_encoder = False`` to turn it off.

This module is copied next to the weights by ``save_pretrained`` (``trust_remote_code``), with the
files it imports relatively; it may import only torch, transformers, the standard library,
``.configuration`` and ``.packed``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.t5.modeling_t5 import T5Block, T5LayerNorm, T5PreTrainedModel, T5Stack
from transformers.models.umt5.modeling_umt5 import UMT5Block, UMT5Stack

from .configuration import T5ClassificationConfig
from .packed import can_pack, packed_encoder_forward


class T5QueryDecoder(nn.Module):
    """The first K layers of a T5 decoder, run on learned queries instead of target tokens.

    Queries attend to each other without a causal mask (with one query this is exactly what the
    pretrained decoder computes at step 0) and to the encoder output through cross-attention.
    """

    def __init__(self, config: T5ClassificationConfig):
        super().__init__()
        decoder_config = copy.deepcopy(config)
        decoder_config.is_decoder = True
        decoder_config.use_cache = False
        self.config = decoder_config
        # UMT5 (relative_attention_per_layer): every layer computes its own relative position bias.
        self.per_layer_bias = bool(config.relative_attention_per_layer)
        self.block = nn.ModuleList(
            [
                UMT5Block(decoder_config, layer_idx=i)
                if self.per_layer_bias
                else T5Block(decoder_config, has_relative_attention_bias=(i == 0), layer_idx=i)
                for i in range(config.num_decoder_layers)
            ]
        )
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(
        self,
        queries: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pool ``encoder_hidden_states`` (batch, seq, d_model) into (batch, queries, d_model)."""
        # Same mask construction as T5Stack, so every attention backend (eager, sdpa, flex) gets its own format.
        cross_mask = create_bidirectional_mask(
            config=self.config,
            inputs_embeds=queries,
            attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )
        hidden_states = self.dropout(queries)  # (batch, queries, d_model)
        if self.per_layer_bias:
            # An all-zero additive mask: queries see each other (without one, a decoder's attention
            # is causal). Each UMT5 layer adds its own position bias.
            self_mask = queries.new_zeros(1, 1, queries.shape[1], queries.shape[1])  # (1, 1, queries, queries)
            for layer in self.block:
                hidden_states = layer(hidden_states, self_mask, encoder_hidden_states, encoder_attention_mask=cross_mask)
            return self.dropout(self.final_layer_norm(hidden_states))
        self_position_bias = None
        cross_position_bias = None
        for layer in self.block:
            # attention_mask=None with is_causal=False: queries see each other (SDPA would otherwise
            # infer a causal mask for more than one query).
            hidden_states, self_position_bias, cross_position_bias = layer(
                hidden_states,
                None,
                self_position_bias,
                encoder_hidden_states,
                cross_mask,
                cross_position_bias,
                is_causal=False,
            )
        return self.dropout(self.final_layer_norm(hidden_states))


class T5ForClassification(T5PreTrainedModel):
    """T5 encoder + ``num_decoder_layers`` decoder layers on learned queries + ``classifier`` head.

    Logits are always ``(batch, num_labels)``:

    * single-label classification and regression: one query, ``classifier(pooled)``;
    * multi-label classification: one query per label and one score per label,
      ``logit_i = classifier.weight[i] . pooled_i + classifier.bias[i]``;
    * ``num_decoder_layers == 0``: the masked mean of the encoder output is the pooled vector;
    * classification logits are divided by ``config.temperature`` (1.0 unless fitted).

    Build one from a pretrained T5 with :meth:`from_t5`; load a saved one with ``from_pretrained``
    (which also reads the published T5ForClassification and EncT5 formats).

    Example:

        >>> import t5cls
        >>> model = t5cls.T5ForClassification.from_t5("google/flan-t5-base", labels=["neg", "pos"])  # doctest: +SKIP
        >>> model(**tokenizer("great film", return_tensors="pt")).logits.shape  # doctest: +SKIP
        torch.Size([1, 2])
    """

    config_class = T5ClassificationConfig
    config: T5ClassificationConfig
    base_model_prefix = "t5cls"
    _tied_weights_keys = {"encoder.embed_tokens.weight": "shared.weight"}
    _keys_to_ignore_on_load_unexpected = None
    # Evaluation runs the encoder on real tokens only when it computes the same (see .packed).
    use_packed_encoder = True
    # Conversion from T5 checkpoints and readers of foreign formats live in t5cls.convert and
    # t5cls.loading, which register them here (register_loaders) when t5cls is imported: this file
    # stays the architecture only, and a copy loaded as remote code reads only t5cls's own format.
    _t5_converter: ClassVar[Callable[..., Any] | None] = None
    _foreign_reader: ClassVar[Callable[..., Any] | None] = None

    def __init__(self, config: T5ClassificationConfig):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)

        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        encoder_config.use_cache = False
        encoder_config.is_encoder_decoder = False
        # UMT5 checkpoints carry a relative position bias in every layer: transformers' own UMT5 stack.
        self.encoder = (UMT5Stack if config.relative_attention_per_layer else T5Stack)(encoder_config)

        if config.num_decoder_layers > 0:
            # A small table of learned queries, not the vocabulary: query i pools for label i
            # (multi-label) or for the whole input (one query).
            self.query_embeddings = nn.Embedding(config.num_queries, config.d_model)
            self.decoder = T5QueryDecoder(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.d_model, config.num_labels)

        self.post_init()

    def _initialize_weights(self, module: nn.Module, is_custom_code: bool = False) -> None:
        # transformers treats any class outside its package as "custom code" and then skips every
        # module whose own parameters are all initialised, which is vacuously true for modules with
        # none (T5Attention, T5LayerFF, this model): T5's scaled init of the decoder layer, the
        # queries and the head would never run, leaving std-1.0 weights. Our `_init_weights` uses
        # `transformers.initialization`, which already leaves loaded weights alone, so the shortcut
        # is not needed.
        super()._initialize_weights(module, is_custom_code=False)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        factor = self.config.initializer_factor
        if isinstance(module, T5ForClassification):
            init.normal_(module.shared.weight, mean=0.0, std=factor * 1.0)
            if hasattr(module, "query_embeddings"):
                init.normal_(module.query_embeddings.weight, mean=0.0, std=factor * 1.0)
            init.normal_(module.classifier.weight, mean=0.0, std=factor * self.config.d_model**-0.5)
            init.zeros_(module.classifier.bias)

    def set_attn_implementation(self, attn_implementation: str | dict) -> None:
        """Switch attention backends (``"sdpa"``, ``"eager"``, ...), the query decoder's included."""
        super().set_attn_implementation(attn_implementation)
        if hasattr(self, "decoder"):
            # The query decoder holds its own config copy (is_decoder=True); transformers only visits
            # the configs of PreTrainedModel submodules.
            self.decoder.config._attn_implementation = self.config._attn_implementation

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.shared = new_embeddings
        self.encoder.set_input_embeddings(new_embeddings)

    @classmethod
    def register_loaders(
        cls, *, from_t5: Callable[..., Any] | None = None, foreign_reader: Callable[..., Any] | None = None
    ) -> None:
        """Install the T5 converter behind :meth:`from_t5` and the reader of published formats
        behind :meth:`from_pretrained` (``t5cls.convert`` and ``t5cls.loading`` do, on import).

        ``foreign_reader(path, **kwargs)`` returns a model for a directory in a foreign format, else None.
        """
        if from_t5 is not None:
            T5ForClassification._t5_converter = staticmethod(from_t5)
        if foreign_reader is not None:
            T5ForClassification._foreign_reader = staticmethod(foreign_reader)

    @classmethod
    def from_t5(cls, src: Any, **kwargs: Any) -> "T5ForClassification":
        """Build a classifier from any T5-family checkpoint, reading only the weights it keeps.

        Args:
            src: a checkpoint directory, a hub id, or an in-memory T5 / mT5 / UMT5 model.
            num_labels, labels: how many outputs, or their names in id order.
            problem_type: ``"single_label_classification"`` (default), ``"multi_label_classification"``
                or ``"regression"``.
            num_decoder_layers: pretrained decoder layers kept for query pooling (default 1; 0 = mean pooling).
            query_init: ``"decoder_start"`` (default) or ``"labels"`` (multi-label: mean embedding of each name).

        Full reference: :func:`t5cls.convert.from_t5`.

        Example:
            >>> model = T5ForClassification.from_t5("google/flan-t5-base", labels=["neg", "pos"])  # doctest: +SKIP
        """
        converter = T5ForClassification._t5_converter
        if converter is None:
            raise ImportError("T5ForClassification.from_t5 needs the t5cls package: pip install t5cls, then import t5cls.")
        return converter(src, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any):
        """Load a saved classifier; with t5cls imported, also the published T5ForClassification and EncT5 formats."""
        reader = T5ForClassification._foreign_reader
        if reader is not None and not args and kwargs.get("config") is None:
            model = reader(pretrained_model_name_or_path, **kwargs)
            if model is not None:
                return model
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def pool(self, encoder_hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled vectors: (batch, queries, d_model), or (batch, d_model) for mean pooling."""
        if self.config.num_decoder_layers == 0:
            if attention_mask is None:
                return encoder_hidden_states.mean(dim=1)
            weights = attention_mask.to(encoder_hidden_states.dtype).unsqueeze(-1)  # (batch, seq, 1)
            return (encoder_hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        batch_size = encoder_hidden_states.shape[0]
        queries = self.query_embeddings.weight.unsqueeze(0).expand(batch_size, -1, -1)  # (batch, queries, d_model)
        queries = queries.to(encoder_hidden_states.dtype)
        return self.decoder(queries, encoder_hidden_states, attention_mask)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | tuple:
        """Class logits ``(batch, num_labels)``, and the loss when ``labels`` are given.

        Args:
            input_ids: token ids ``(batch, seq)``.
            attention_mask: 1 for real tokens, 0 for padding ``(batch, seq)``.
            inputs_embeds: instead of ``input_ids``, embeddings ``(batch, seq, d_model)``.
            labels: class ids ``(batch,)`` (single-label), 0/1 targets ``(batch, num_labels)``
                (multi-label) or values ``(batch,)`` / ``(batch, num_labels)`` (regression).
        """
        # Trainer / PEFT pass extra keys (e.g. num_items_in_batch) that an encoder classifier ignores.
        kwargs.pop("num_items_in_batch", None)
        kwargs.pop("token_type_ids", None)
        hidden_states = attentions = None
        if self._packed_encoder_applies(output_hidden_states, output_attentions):
            last_hidden_state = packed_encoder_forward(self.encoder, input_ids, attention_mask, inputs_embeds)
        else:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
            )
            last_hidden_state = encoder_outputs.last_hidden_state
            hidden_states, attentions = encoder_outputs.hidden_states, encoder_outputs.attentions
        pooled = self.dropout(self.pool(last_hidden_state, attention_mask))
        if pooled.dim() == 3 and self.config.problem_type == "multi_label_classification":
            # One query per label, one score per label.
            logits = (pooled * self.classifier.weight).sum(dim=-1) + self.classifier.bias  # (batch, num_labels)
        else:
            if pooled.dim() == 3:
                pooled = pooled[:, 0]  # (batch, d_model)
            logits = self.classifier(pooled)  # (batch, num_labels)
        if self.config.temperature != 1.0 and self.config.problem_type != "regression":
            # Temperature scaling lives in the forward so that every runner (pipelines, ONNX, the
            # server) gives the calibrated probabilities; training always runs at 1.0.
            logits = logits / self.config.temperature

        loss = self.loss(logits, labels) if labels is not None else None
        output = SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=hidden_states,
            attentions=attentions,
        )
        if return_dict is False:
            return output.to_tuple()
        return output

    def _packed_encoder_applies(self, output_hidden_states: bool | None, output_attentions: bool | None) -> bool:
        # Per-layer outputs exist only in transformers' own forward.
        wants_hidden = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        wants_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if wants_hidden or wants_attentions:
            return False
        return self.use_packed_encoder and can_pack(self.encoder, dtype=self.encoder.embed_tokens.weight.dtype)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, binary cross-entropy or MSE, following ``config.problem_type``."""
        labels = labels.to(logits.device)
        problem_type = self.config.problem_type
        if problem_type == "single_label_classification":
            return CrossEntropyLoss()(logits.view(-1, self.config.num_labels), labels.view(-1).long())
        if problem_type == "multi_label_classification":
            return BCEWithLogitsLoss()(logits, labels.to(logits.dtype))
        if self.config.num_labels == 1:
            return MSELoss()(logits.view(-1), labels.view(-1).to(logits.dtype))
        return MSELoss()(logits, labels.to(logits.dtype))


__all__ = ["T5ForClassification", "T5QueryDecoder"]
