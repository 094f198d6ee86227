"""Reranker: scores equal the plain transformers computation (windows included), classifiers, bad input.

The judge for seq2seq models is ``T5ForConditionalGeneration(input_ids, decoder_input_ids=[[start]])``
run one prompt at a time, softmax over the logits of ``▁true`` / ``▁false``; for classifiers the
model's own forward on ``tokenizer(query, document)``. Windows are built by hand here from the
template's pieces, tokenised apart, and the starts ``0, step, 2 * step, ..., n - size``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForSequenceClassification

import t5cls
from t5cls import InputError, Reranker
from t5cls.convert import save_classifier
from tests.conftest import TINY, build_seq2seq, sample_texts

TEMPLATE = "Query: {query} Document: {document} Relevant:"
QUERY = "who won the game"


def direct_p_true(model, input_ids: list[int], true_id: int, false_id: int) -> float:
    """P(true) from one decoder step of T5ForConditionalGeneration on one prompt."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([input_ids]), decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits
    pair = logits[0, 0, [true_id, false_id]].double()
    return float(torch.softmax(pair, dim=0)[0])


def hand_windows(ids: list[int], size: int, stride: int) -> list[list[int]]:
    if len(ids) <= size:
        return [ids]
    starts = list(range(0, len(ids) - size, size - stride)) + [len(ids) - size]
    return [ids[s : s + size] for s in starts]


@pytest.fixture(scope="module")
def model():
    # initializer_factor 0.5 keeps random logits in a trained model's range (as in test_scoring).
    return build_seq2seq(seed=3, initializer_factor=0.5)


@pytest.fixture(scope="module")
def documents():
    return sample_texts(5) + ["", "short one"]


@pytest.fixture(scope="module")
def ids(tiny_tokenizer):
    return {word: tiny_tokenizer(word, add_special_tokens=False).input_ids[0] for word in ("true", "false", "yes", "no")}


# --- exactness -----------------------------------------------------------------------------


def test_scores_equal_t5_for_conditional_generation(model, tiny_tokenizer, documents, ids):
    # A small token budget splits the pairs into several batches: sorting and input order are exercised.
    reranker = Reranker((model, tiny_tokenizer), batch_tokens=128, show_progress_bar=False)
    got = reranker.score([(QUERY, d) for d in documents])
    expected = [direct_p_true(model, tiny_tokenizer(TEMPLATE.format(query=QUERY, document=d)).input_ids, ids["true"], ids["false"]) for d in documents]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    ranked = reranker.rank(QUERY, documents)
    assert [r["index"] for r in ranked] == list(np.argsort(-np.asarray(expected), kind="stable"))
    np.testing.assert_allclose([r["score"] for r in ranked], np.sort(expected)[::-1], rtol=0, atol=1e-5)
    log_odds = reranker.log_odds([(QUERY, d) for d in documents])
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), got, rtol=0, atol=1e-12)


def test_flan_yes_no_prompt(model, tiny_tokenizer, ids):
    template = "Is the document relevant to the query? Query: {query} Document: {document}"
    reranker = Reranker((model, tiny_tokenizer), template=template, true_word="yes", false_word="no", show_progress_bar=False)
    docs = ["The home team won 3-1.", "Rain is expected on Monday."]
    got = reranker.score([(QUERY, d) for d in docs])
    expected = [direct_p_true(model, tiny_tokenizer(template.format(query=QUERY, document=d)).input_ids, ids["yes"], ids["no"]) for d in docs]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("stride", [None, 5, 0])
def test_long_documents_score_their_best_window(model, tiny_tokenizer, ids, stride):
    max_length = 48  # the prompt's prefix and suffix take 27 of them, the short document fits
    long_doc = " ".join(sample_texts(4))  # 75 tokens: several windows
    short_doc = "The home team won."
    reranker = Reranker((model, tiny_tokenizer), max_length=max_length, stride=stride, show_progress_bar=False)
    got = reranker.score([(QUERY, long_doc), (QUERY, short_doc)])

    prefix = tiny_tokenizer(f"Query: {QUERY} Document:", add_special_tokens=False).input_ids
    suffix = tiny_tokenizer("Relevant:", add_special_tokens=False).input_ids + [tiny_tokenizer.eos_token_id]
    doc_ids = tiny_tokenizer(long_doc, add_special_tokens=False).input_ids
    # The pieces tokenised apart are the whole prompt's tokens: the windows cut the document only.
    assert prefix + doc_ids + suffix == tiny_tokenizer(TEMPLATE.format(query=QUERY, document=long_doc)).input_ids
    size = max_length - len(prefix) - len(suffix)
    windows = hand_windows(doc_ids, size, size // 4 if stride is None else stride)
    assert len(windows) >= 3
    per_window = [direct_p_true(model, prefix + w + suffix, ids["true"], ids["false"]) for w in windows]
    short = direct_p_true(model, tiny_tokenizer(TEMPLATE.format(query=QUERY, document=short_doc)).input_ids, ids["true"], ids["false"])
    np.testing.assert_allclose(got, [max(per_window), short], rtol=0, atol=1e-5)

    truncating = Reranker((model, tiny_tokenizer), max_length=max_length, stride=stride, long_inputs="truncate", show_progress_bar=False)
    np.testing.assert_allclose(truncating.score([(QUERY, long_doc)]), [per_window[0]], rtol=0, atol=1e-5)


def test_from_a_checkpoint_directory(tiny_t5_dir, tiny_tokenizer, ids):
    from transformers import T5ForConditionalGeneration

    reranker = Reranker(tiny_t5_dir, show_progress_bar=False)
    assert reranker.kind == "seq2seq"
    reference = T5ForConditionalGeneration.from_pretrained(tiny_t5_dir).eval()
    got = reranker.score([(QUERY, "The home team won.")])
    expected = direct_p_true(reference, tiny_tokenizer(TEMPLATE.format(query=QUERY, document="The home team won.")).input_ids, ids["true"], ids["false"])
    np.testing.assert_allclose(got, [expected], rtol=0, atol=1e-5)


def test_int8_seq2seq_scores_follow_fp32(model, tiny_tokenizer, documents):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    pairs = [(QUERY, d) for d in documents]
    fp32 = Reranker((model, tiny_tokenizer), show_progress_bar=False).score(pairs)
    int8 = Reranker((model, tiny_tokenizer), quantize="int8", show_progress_bar=False)
    assert any(isinstance(m, DynamicLinear) for m in int8.model.modules())
    assert not any(isinstance(m, DynamicLinear) for m in model.modules())  # quantised as a copy
    np.testing.assert_allclose(int8.score(pairs), fp32, rtol=0, atol=0.05)


# --- ranking -------------------------------------------------------------------------------


def test_rank_many_queries_is_one_call_of_pairs(model, tiny_tokenizer, documents):
    reranker = Reranker((model, tiny_tokenizer), show_progress_bar=False)
    queries = [QUERY, "stock prices"]
    lists = [documents, documents[:3]]
    both = reranker.rank(queries, lists, top_n=2, return_documents=True)
    assert len(both) == 2
    for query, docs, ranked in zip(queries, lists, both):
        alone = reranker.rank(query, docs)
        assert [r["index"] for r in ranked] == [r["index"] for r in alone[:2]]
        np.testing.assert_allclose([r["score"] for r in ranked], [r["score"] for r in alone[:2]], rtol=0, atol=1e-6)
        assert [r["document"] for r in ranked] == [docs[r["index"]] for r in ranked]
        assert all(0.0 <= r["score"] <= 1.0 for r in ranked)
    assert set(reranker.rank(QUERY, documents)[0]) == {"index", "score"}
    assert len(reranker.rank(QUERY, documents, top_n=100)) == len(documents)
    assert reranker.rank([], []) == []


# --- pair classifiers ----------------------------------------------------------------------


def _pair_logits(model, tokenizer, pairs) -> np.ndarray:
    # Lists, so that an empty document is still a pair (tokenizer(q, "") would drop it).
    with torch.no_grad():
        return np.stack([model(**tokenizer([q], [d], return_tensors="pt")).logits[0].double().numpy() for q, d in pairs])


@pytest.fixture(scope="module")
def relevance_classifier_dir(tmp_path_factory, tiny_t5_dir, tiny_tokenizer):
    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["not_relevant", "relevant"])
    torch.manual_seed(2)
    with torch.no_grad():
        model.query_embeddings.weight.normal_()
        model.classifier.weight.normal_()
    out = tmp_path_factory.mktemp("relevance") / "model"
    save_classifier(model, out, tokenizer=tiny_tokenizer)
    return out


def test_two_label_classifier_gives_p_relevant(relevance_classifier_dir, tiny_tokenizer, documents):
    reranker = Reranker(relevance_classifier_dir, show_progress_bar=False)
    assert reranker.kind == "classifier" and reranker.relevant_label == "relevant"
    pairs = [(QUERY, d) for d in documents]
    logits = _pair_logits(reranker.model, tiny_tokenizer, pairs)
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(reranker.score(pairs), expected, rtol=0, atol=1e-5)
    # Naming the other label scores its probability.
    other = Reranker(relevance_classifier_dir, relevant_label="not_relevant", show_progress_bar=False)
    np.testing.assert_allclose(other.score(pairs), 1 - expected, rtol=0, atol=1e-5)


def test_classifier_windows_keep_the_query_whole(relevance_classifier_dir, tiny_tokenizer):
    max_length = 24
    reranker = Reranker(relevance_classifier_dir, max_length=max_length, stride=4, show_progress_bar=False)
    long_doc = " ".join(sample_texts(4))
    query_ids = tiny_tokenizer(QUERY, add_special_tokens=False).input_ids
    doc_ids = tiny_tokenizer(long_doc, add_special_tokens=False).input_ids
    eos = tiny_tokenizer.eos_token_id
    size = max_length - len(query_ids) - 2  # T5 pairs: query </s> document </s>
    windows = hand_windows(doc_ids, size, 4)
    assert len(windows) >= 3
    with torch.no_grad():
        logits = torch.cat([reranker.model(input_ids=torch.tensor([query_ids + [eos] + w + [eos]])).logits for w in windows]).double()
    np.testing.assert_allclose(reranker.score([(QUERY, long_doc)]), [torch.softmax(logits, 1)[:, 1].max().item()], rtol=0, atol=1e-5)


def test_regression_classifier_is_sigmoid(tiny_t5_dir, tiny_tokenizer):
    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, num_labels=1, problem_type="regression")
    torch.manual_seed(4)
    with torch.no_grad():
        model.classifier.weight.normal_()
    reranker = Reranker((model, tiny_tokenizer), show_progress_bar=False)
    pairs = [(QUERY, "The home team won."), (QUERY, "Rain on Monday.")]
    values = _pair_logits(model, tiny_tokenizer, pairs)[:, 0]
    np.testing.assert_allclose(reranker.score(pairs), 1 / (1 + np.exp(-values)), rtol=0, atol=1e-5)


def test_any_transformers_sequence_classifier(tiny_tokenizer):
    torch.manual_seed(5)
    config = T5Config(**TINY, num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1}, decoder_start_token_id=0)
    model = T5ForSequenceClassification(config).eval()
    reranker = Reranker(model, tokenizer=tiny_tokenizer, show_progress_bar=False)
    assert reranker.relevant_label == "yes"
    pairs = [(QUERY, "The home team won."), (QUERY, "Rain on Monday.")]
    logits = _pair_logits(model, tiny_tokenizer, pairs)
    np.testing.assert_allclose(reranker.score(pairs), np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1), rtol=0, atol=1e-5)


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reranker(model, tiny_tokenizer):
    return Reranker((model, tiny_tokenizer), show_progress_bar=False)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda rr: rr.rank(QUERY, []), "empty"),
        (lambda rr: rr.rank(QUERY, "one document"), "list of strings"),
        (lambda rr: rr.rank(QUERY, ["a", 3]), r"documents\[1\]"),
        (lambda rr: rr.rank(QUERY, ["a"], top_n=0), "top_n=0"),
        (lambda rr: rr.rank(QUERY, ["a"], top_n=-2), "top_n=-2"),
        (lambda rr: rr.rank(QUERY, ["a"], top_n=1.5), "top_n"),
        (lambda rr: rr.rank(None, ["a"]), "query"),
        (lambda rr: rr.rank(["q1", "q2"], [["a"]]), "2 document lists"),
        (lambda rr: rr.rank(["q1"], [[]]), r"documents\[0\] is empty"),
        (lambda rr: rr.score([("q", 1)]), r"pairs\[0\]"),
        (lambda rr: rr.score("q"), "pairs"),
    ],
)
def test_bad_calls_are_input_errors(reranker, call, match):
    with pytest.raises(InputError, match=match):
        call(reranker)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"template": "Query: {query} Relevant:"}, r"lacks \{document\}"),
        ({"template": "Document: {document}"}, r"lacks \{query\}"),
        ({"template": "{query} {document} {title}"}, "unknown field"),
        ({"template": "{query} {document} {document}"}, "more than once"),
        ({"template": "{query} {}"}, "field"),
        ({"true_word": "relevantly"}, r"true_word='relevantly' is \d+ tokens"),
        ({"false_word": ""}, "false_word"),
        ({"true_word": "true", "false_word": "true"}, "same token"),
        ({"relevant_label": "yes"}, "pair classifiers"),
        ({"stride": 512}, "stride=512"),
        ({"stride": -1}, "stride=-1"),
        ({"long_inputs": "split"}, "long_inputs"),
        ({"max_length": 0}, "max_length=0"),
    ],
)
def test_bad_options_are_input_errors(model, tiny_tokenizer, options, match):
    if "true_word" in options and options["true_word"] == "relevantly":
        assert len(tiny_tokenizer("relevantly", add_special_tokens=False).input_ids) > 1
    with pytest.raises(InputError, match=match):
        Reranker((model, tiny_tokenizer), **options)


def test_query_too_long_for_max_length(model, tiny_tokenizer):
    reranker = Reranker((model, tiny_tokenizer), max_length=16, show_progress_bar=False)
    with pytest.raises(InputError, match="no room for the document"):
        reranker.score([(" ".join(["word"] * 20), "a document that is long enough to need windows " * 3)])


def test_classifier_labels_must_say_which_is_relevant(tiny_t5_dir, tiny_tokenizer):
    model = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["cats", "dogs"])
    with pytest.raises(InputError, match="relevant_label=..."):
        Reranker((model, tiny_tokenizer))
    with pytest.raises(InputError, match="not one of the model's labels"):
        Reranker((model, tiny_tokenizer), relevant_label="birds")
    assert Reranker((model, tiny_tokenizer), relevant_label="dogs").relevant_label == "dogs"
    three = t5cls.T5ForClassification.from_t5(tiny_t5_dir, labels=["a", "b", "c"])
    with pytest.raises(InputError, match="3 labels"):
        Reranker((three, tiny_tokenizer))


def test_missing_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        Reranker(tmp_path / "nothing-here")


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_groups():
    texts = sample_texts(6)
    return [(QUERY, texts[:3]), ("stock prices", texts[3:5]), (QUERY, texts[5:] + ["short one"])]


def _expected(model_dir, groups, **options):
    reranker = Reranker(model_dir, show_progress_bar=False)
    return [{"query": q, "results": reranker.rank(q, docs, **options)} for q, docs in groups]


def _assert_rankings_equal(got, expected):
    assert [g["query"] for g in got] == [e["query"] for e in expected]
    for g, e in zip(got, expected):
        assert [r["index"] for r in g["results"]] == [r["index"] for r in e["results"]]
        assert [r.get("document") for r in g["results"]] == [r.get("document") for r in e["results"]]
        np.testing.assert_allclose([r["score"] for r in g["results"]], [r["score"] for r in e["results"]], rtol=0, atol=1e-6)


def test_cli_jsonl_to_stdout(tiny_t5_dir, cli_groups, tmp_path, capsys):
    import json

    from t5cls.cli import main

    source = tmp_path / "queries.jsonl"
    source.write_text("".join(json.dumps({"query": q, "documents": d}) + "\n" for q, d in cli_groups))
    assert main(["rerank", str(tiny_t5_dir), str(source), "--top-n", "2", "--return-documents"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    _assert_rankings_equal(got, _expected(tiny_t5_dir, cli_groups, top_n=2, return_documents=True))


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_cli_table_rows_grouped_by_query(tiny_t5_dir, cli_groups, tmp_path, suffix):
    import csv
    import json

    from t5cls.cli import main

    source = tmp_path / f"pairs{suffix}"
    with source.open("w", newline="") as handle:
        tsv = suffix == ".tsv"
        writer = csv.writer(handle, delimiter="\t" if tsv else ",", quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, escapechar="\\")
        writer.writerow(["query", "document"])
        writer.writerows((q, d.replace("\t", " ")) for q, docs in cli_groups for d in docs)
    out = tmp_path / "ranked.jsonl"
    assert main(["rerank", str(tiny_t5_dir), str(source), "--output", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    # The same query twice, apart, is two groups: rows of one query are grouped where they are consecutive.
    assert len(got) == 3
    _assert_rankings_equal(got, _expected(tiny_t5_dir, cli_groups))


@pytest.mark.parametrize(
    "lines, extra, match",
    [
        (['{"query": "q", "documents": ["a"]}'], ["--top-n", "0"], "top_n=0"),
        (['{"query": "q", "documents": ["a"]}'], ["--output", "out.csv"], "use a .jsonl file"),
        (['{"query": "q", "documents": ["a"]}'], ["--template", "Query: {query}"], r"lacks \{document\}"),
        (['{"query": "q", "documents": []}'], [], "is empty"),
        (['{"query": "q", "docs": ["a"]}'], [], "neither a 'documents' list"),
        (['{"query": "q", "documents": "a"}'], [], "list of strings"),
    ],
)
def test_cli_bad_input_is_one_line(tiny_t5_dir, tmp_path, capsys, lines, extra, match):
    from t5cls.cli import main

    source = tmp_path / "queries.jsonl"
    source.write_text("\n".join(lines) + "\n")
    extra = [str(tmp_path / e) if e.endswith(".csv") else e for e in extra]
    assert main(["rerank", str(tiny_t5_dir), str(source), *extra]) == 2
    err = capsys.readouterr().err
    assert "t5cls rerank: error:" in err and "Traceback" not in err
    assert re.search(match, err)


def test_cli_table_without_document_column(tiny_t5_dir, tmp_path, capsys):
    from t5cls.cli import main

    source = tmp_path / "pairs.csv"
    source.write_text("query,text\nq,a\n")
    assert main(["rerank", str(tiny_t5_dir), str(source)]) == 2
    assert "'document'" in capsys.readouterr().err
