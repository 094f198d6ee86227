"""The OpenAPI document is the server's contract: schemathesis holds a real server to it.

schemathesis (all its checks, a bounded number of examples per route, a fixed seed) runs against
``/openapi.json`` of a real uvicorn on 127.0.0.1: no 5xx, every status and body as documented,
everything the schema allows accepted, everything it forbids refused. One server holds an NLI
classifier (the /v1 classifier routes, Hugging Face, TEI /predict, the page, /metrics), the
other a seq2seq T5 (label scoring and the three rerank formats).

The one setting: a refusal with 413 (a limit from the schema's maxItems / maxLength) counts as the
rejection of invalid data, beside schemathesis's default 4xx list.
"""

from __future__ import annotations

import pytest

from t5cls.server import create_app
from tests.test_server import ThreadServer

# Small limits, so that schema-valid bodies stay far under max_body_bytes (which a JSON schema
# cannot state): 4 x 50 characters, even as 12-byte \\u escapes, is a few kB.
LIMITS = dict(max_inputs=4, max_chars=50, max_documents=4)
MAX_EXAMPLES = 8

CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


@pytest.mark.parametrize("model,paths", [("nli", None), ("seq2seq", "^/(v1/score|rerank|v1/rerank|v2/rerank)$")], ids=["nli-classifier", "seq2seq"])
def test_schemathesis_finds_nothing(request, tmp_path, model, paths):
    from click.testing import CliRunner
    from schemathesis.cli import schemathesis

    model_dir = request.getfixturevalue({"nli": "tiny_nli_dir", "seq2seq": "tiny_t5_dir"}[model])
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with ThreadServer(create_app(model_dir, max_wait_ms=0, **LIMITS)) as running:
        arguments = [
            "--config-file", str(config), "run", f"{running.url}/openapi.json", "--checks", "all",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--workers", "1", "--no-shrink",
            "--report", "junit", "--report-dir", str(tmp_path),
        ]  # fmt: skip
        if paths:
            arguments += ["--include-path-regex", paths]
        result = CliRunner().invoke(schemathesis, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "No issues found" in result.output, result.output


def test_openapi_states_limits_statuses_and_error_body(tiny_nli_dir):
    import re

    import httpx

    with ThreadServer(create_app(tiny_nli_dir, **LIMITS)) as running:
        spec = httpx.get(f"{running.url}/openapi.json").json()
        comma = httpx.post(f"{running.url}/v1/zero-shot", json={"inputs": "x", "candidate_labels": "sports, sports,world"}).json()
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string" and "HTTPValidationError" not in schemas
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"200", "500"} <= codes, (method, path)
            if method == "post":
                assert {"400", "413", "422", "503"} <= codes, path
                assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["paths"]["/"]["get"]["responses"]["200"]["content"]) == {"text/html", "application/json"}

    inputs = schemas["ClassifyRequest"]["properties"]["inputs"]["anyOf"]
    assert inputs[0] == {"type": "string", "minLength": 1, "pattern": r"\S", "maxLength": LIMITS["max_chars"]}
    assert inputs[1]["maxItems"] == LIMITS["max_inputs"] and inputs[2]["items"]["maxItems"] == 2
    assert schemas["ClassifyRequest"]["properties"]["stride"]["anyOf"][0]["maximum"] == 511  # under the model's max_length
    # The comma-separated form: at most max_inputs labels, each non-blank and at most max_chars long.
    pattern = schemas["ZeroShotRequest"]["properties"]["candidate_labels"]["anyOf"][1]["pattern"]
    assert re.search(pattern, "sports, politics ,x") and not re.search(pattern, "a,,b") and not re.search(pattern, "a,b,c,d,e")
    assert not re.search(pattern, "y" * (LIMITS["max_chars"] + 1))
    assert comma["results"][0]["labels"] and sorted(comma["results"][0]["labels"]) == ["sports", "world"]  # a repeat counts once
