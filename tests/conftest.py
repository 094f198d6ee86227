"""Shared fixtures: a tokenizer and tiny random T5 checkpoints, written to disk once per session.

Every test loads through the real loading code (directories with config.json, safetensors and
tokenizer files). Nothing here needs anything beside the repository: the tokenizer is a T5-shaped
SentencePiece-style (Unigram) tokenizer trained on the demo data that t5cls ships
(``src/t5cls/demo_data``), with T5's special tokens (``<pad>``=0, ``</s>``=1, ``<unk>``=2) and
its 100 ``<extra_id_N>`` sentinels at the end of the vocabulary.

Only tests of facts about the real T5 vocabulary (``../shared/tokenizers/t5``) and checks on real
data (``../shared/data``) need ``../shared``: they are marked ``@needs_shared`` (or take the
``real_t5_tokenizer`` fixture) and skip with that reason when it is absent. ``T5CLS_SHARED=DIR``
points the suite at another copy (``T5CLS_SHARED=/nonexistent`` shows what a fresh clone runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One thread: tiny models (d_model 32) gain nothing from a second, and when the cores are busy a
# second OpenMP thread waiting for one is ruinous (brute-force label scoring, 42 tiny forward
# passes: 35 s with 2 threads on a loaded 2-core machine, 1 s with 1).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("T5CLS_SHARED", REPO.parent / "shared"))
TOKENIZER_DIR = SHARED / "tokenizers" / "t5"
DATA_DIR = SHARED / "data"
REFERENCE_DIR = SHARED / "reference"
DEMO_DATA = REPO / "src" / "t5cls" / "demo_data" / "intents.csv"

SHARED_REASON = f"needs ../shared (the real T5 vocabulary and data), absent at {SHARED}"
needs_shared = pytest.mark.skipif(not all(p.is_dir() for p in (TOKENIZER_DIR, DATA_DIR, REFERENCE_DIR)), reason=SHARED_REASON)

# The test tokenizer's size: 900 pieces learned from the demo data (specials and ASCII included),
# then 100 sentinels. TINY's vocab_size leaves room, as t5's 32128 rows do for its 32100 tokens.
TOKENIZER_PIECES = 900
# Scores this close above the trainer's lowest are its coverage characters (build_tokenizer); its
# lowest real piece measured 0.028 above.
COVERAGE_BAND = 0.01
EXTRA_IDS = 100
WHOLE_WORDS = ("true", "false", "yes", "no", "positive", "negative", "neutral")

# Tiny shapes: d_model 32, 2 layers, a 1024-row vocabulary (the test tokenizer's 1000 tokens fit).
TINY = dict(vocab_size=1024, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0)


def demo_sentences() -> list[str]:
    """The 600 sentences of the shipped demo data, in file order."""
    import csv

    with DEMO_DATA.open(newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def build_tokenizer():
    """A T5-shaped tokenizer (``transformers.T5Tokenizer``) learned from the demo sentences.

    A Unigram model, as SentencePiece's T5 vocabulary is, trained with the ``tokenizers`` library.
    Its trainer breaks ties between equal scores in thread order, its scores wobble in the last
    bits and it orders its coverage characters anew in every process, so the pieces are ordered by
    their rounded score, then by name: the same ids in every process (a test checks it).
    """
    import json
    import string

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    specials = ["<pad>", "</s>", "<unk>"]
    learner = Tokenizer(models.Unigram())
    learner.normalizer = normalizers.NFKC()
    learner.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=TOKENIZER_PIECES, special_tokens=specials, unk_token="<unk>", show_progress=False,
        initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation),
        seed_size=20_000,  # candidate pieces to prune from; the default million takes 10 s on this data
    )
    learner.train_from_iterator(demo_sentences(), trainer)
    learned = {piece: round(score, 6) for piece, score in json.loads(learner.to_str())["model"]["vocab"] if piece not in specials}
    # The characters it keeps for coverage only (the initial alphabet, rare letters) it scores just
    # under its lowest piece, 1e-4 apart in an order that changes from process to process (their ids
    # did); one shared score makes them tie, so the name orders them.
    floor = min(learned.values())
    learned = {piece: floor if len(piece) == 1 and score < floor + COVERAGE_BAND else score for piece, score in learned.items()}
    # Words that are one token in T5's vocabulary and that tests rely on being one (monoT5's
    # true/false, yes/no; one-token labels), as SentencePiece's user-defined pieces: scored like
    # the most frequent word, so that Unigram never splits them.
    top = max(score for piece, score in learned.items() if piece != "▁")
    learned.update({f"▁{word}": top for word in WHOLE_WORDS})
    pieces = sorted(learned.items(), key=lambda item: (-item[1], item[0]))
    # T5's layout: specials first, the pieces, then <extra_id_99> ... <extra_id_0> last.
    vocab = [(token, 0.0) for token in specials] + pieces + [(f"<extra_id_{i}>", 0.0) for i in reversed(range(EXTRA_IDS))]
    return T5Tokenizer(vocab=vocab, extra_ids=EXTRA_IDS, model_max_length=512)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """The test tokenizer saved once per session (tokenizer.json + tokenizer_config.json)."""
    out = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer().save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    """The test tokenizer, loaded back from disk the way users load one."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert len(tokenizer) <= TINY["vocab_size"]
    return tokenizer


@pytest.fixture(scope="session")
def t5_tokenizer(tiny_tokenizer):
    """The fixture's old name, kept for tests written before the suite had its own tokenizer: it is
    the test tokenizer, not T5's vocabulary (that is ``real_t5_tokenizer``)."""
    return tiny_tokenizer


@pytest.fixture(scope="session")
def real_t5_tokenizer():
    """T5's own vocabulary (32100 tokens), for tests of facts about it; skips without ../shared."""
    if not TOKENIZER_DIR.is_dir():
        pytest.skip(SHARED_REASON)  # the same reason as @needs_shared
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


def tiny_t5_config(**overrides):
    """A flan-t5-like (gated-gelu, untied) tiny config; pass overrides for t5 (relu, tied) etc."""
    from transformers import T5Config

    fields = {**TINY, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "decoder_start_token_id": 0}
    fields.update(overrides)
    return T5Config(**fields)


def build_seq2seq(seed: int = 0, **overrides):
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    return T5ForConditionalGeneration(tiny_t5_config(**overrides)).eval()


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A flan-t5-shaped T5ForConditionalGeneration checkpoint with the test tokenizer."""
    out = tmp_path_factory.mktemp("tiny-flan-t5")
    build_seq2seq(seed=0).save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5_relu_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """An original-t5-shaped checkpoint (relu, tied embeddings), saved as pytorch_model.bin."""
    out = tmp_path_factory.mktemp("tiny-t5-relu")
    model = build_seq2seq(seed=1, feed_forward_proj="relu", tie_word_embeddings=True)
    model.config.save_pretrained(out)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    tiny_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, tiny_t5_dir, tiny_tokenizer) -> Path:
    """A 3-label T5ForClassification converted from ``tiny_t5_dir``, with its tokenizer."""
    import t5cls
    from t5cls.convert import save_classifier

    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["negative", "neutral", "positive"])
    torch.manual_seed(0)
    with torch.no_grad():  # a non-trivial query so that parity tests are not comparing near-zero logits
        model.query_embeddings.weight.normal_()
    out = tmp_path_factory.mktemp("tiny-classifier") / "model"
    save_classifier(model, out, tokenizer=tiny_tokenizer)
    return out


@pytest.fixture(scope="session")
def tiny_nli_dir(tmp_path_factory, tiny_t5_dir, tiny_tokenizer) -> Path:
    """A 3-way NLI T5ForClassification (entailment / neutral / contradiction) with its tokenizer."""
    import t5cls
    from t5cls.convert import save_classifier

    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["entailment", "neutral", "contradiction"])
    torch.manual_seed(1)
    with torch.no_grad():
        model.query_embeddings.weight.normal_()
        model.classifier.weight.normal_()
    out = tmp_path_factory.mktemp("tiny-nli") / "model"
    save_classifier(model, out, tokenizer=tiny_tokenizer)
    return out


# ONNX Runtime's int8 rounds further from fp32 on CPUs without an int32-accumulating int8 dot
# product (VNNI): on an AVX2-only AMD EPYC the tiny test models' probabilities moved up to 0.09
# (classifier) and 0.15 (zero-shot) where VNNI CPUs stayed under 0.05 and 0.053 (measured, several runs).
def int8_has_vnni() -> bool:
    from t5cls.devices import cpu_flags

    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


def sample_texts(n: int = 64) -> list[str]:
    """``n`` texts of one to three demo sentences each (5 to 60 tokens), the same on every machine."""
    sentences = demo_sentences()
    # A stride through the file mixes the intents; every third text is one sentence, so lengths vary.
    picked = [sentences[(i * 37) % len(sentences)] for i in range(3 * n)]
    return [", ".join(picked[3 * i : 3 * i + 1 + i % 3]) for i in range(n)]


@pytest.fixture(scope="session")
def broken_vocab_classifier(tmp_path_factory, tiny_tokenizer) -> tuple[Path, str, str]:
    """A classifier whose embedding table is smaller than its tokenizer's vocabulary: a real bug.

    Returns ``(directory, good_text, bad_text)``: ``good_text`` tokenizes to ids inside the table
    and classifies; ``bad_text`` has an id past its end, so the model raises an IndexError, as a
    bug deep in a forward pass would (tests of the CLI's exit 1 and the server's 500).
    """
    import t5cls
    from t5cls.convert import save_classifier

    good = "the"
    rows = max(tiny_tokenizer(good)["input_ids"] + [tiny_tokenizer.pad_token_id, tiny_tokenizer.eos_token_id]) + 1
    candidates = ["xylophone quantum", "zeitgeist", "Mississippi", "ornithology", "the " + tiny_tokenizer.convert_ids_to_tokens(len(tiny_tokenizer) - 1)]
    bad = next(text for text in candidates if max(tiny_tokenizer(text)["input_ids"]) >= rows)
    source = tmp_path_factory.mktemp("small-vocab-t5")
    build_seq2seq(seed=2, vocab_size=rows).save_pretrained(source)
    model = t5cls.T5ForClassification.from_t5(source, labels=["negative", "positive"])
    out = tmp_path_factory.mktemp("broken-vocab-classifier") / "model"
    save_classifier(model, out, tokenizer=tiny_tokenizer)
    return out, good, bad
