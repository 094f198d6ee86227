"""Parameters of T5ForClassification vs the full seq2seq T5, at the published shapes.

Everything is built on the `meta` device: no weights, no memory, no download.

    python benchmarks/param_counts.py
"""

from __future__ import annotations

import torch
from transformers import T5Config, T5ForConditionalGeneration

from t5cls import T5ForClassification
from t5cls.convert import classification_config

# Published shapes (vocab 32128): t5 v1.0 (relu, tied), t5-v1_1 / flan-t5 (gated-gelu, untied).
SHAPES = {
    "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu"),
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, feed_forward_proj="relu"),
    "t5-large": dict(d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16, feed_forward_proj="relu"),
    "flan-t5-base": dict(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "flan-t5-large": dict(d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "flan-t5-xl": dict(d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "flan-t5-xxl": dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    print("| checkpoint shape | full seq2seq T5 | T5ForClassification (1 decoder layer, 3 labels) | share |")
    print("|---|---:|---:|---:|")
    for name, shape in SHAPES.items():
        source = T5Config(vocab_size=32128, **shape)
        with torch.device("meta"):
            full = count(T5ForConditionalGeneration(source))
            config = classification_config(
                source.to_dict(), id2label={0: "a", 1: "b", 2: "c"}, problem_type="single_label_classification", num_decoder_layers=1
            )
            ours = count(T5ForClassification(config))
        if shape.get("tie_word_embeddings") is False:
            # transformers 5 builds the LM head tied and unties it only when a checkpoint holds both
            # matrices; the published untied checkpoints carry a separate (vocab, d_model) head.
            full += source.vocab_size * source.d_model
        print(f"| {name} | {full / 1e6:,.1f}M | {ours / 1e6:,.1f}M | {ours / full:.0%} |")


if __name__ == "__main__":
    main()
