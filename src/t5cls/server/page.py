"""``GET /``: a page to try the served model (browsers), or the ``/v1/model`` JSON (everyone else).

The page is one inline HTML document with its script: no build step, nothing fetched from
elsewhere. It reads ``/v1/model`` to offer the tasks this model serves (classify, zero-shot, label
scoring, rerank), posts to the server's own ``/v1/*`` and ``/rerank`` routes, draws the scores as
bars, and shows the API's ``detail`` message when a request is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from .contract import GET_ERRORS

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>t5cls</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.3rem; margin-bottom: .2rem; }
  #model { color: #666; margin-top: 0; }
  label { display: block; margin-top: .8rem; font-weight: 600; }
  textarea, input, select { width: 100%; box-sizing: border-box; font: inherit; padding: .4rem; }
  textarea { min-height: 6rem; }
  button { margin-top: 1rem; padding: .5rem 1.5rem; font: inherit; cursor: pointer; }
  .hint { font-weight: normal; color: #666; }
  .result { display: grid; grid-template-columns: 12rem 1fr 4.5rem; gap: .5rem; align-items: center; margin: .3rem 0; }
  .bar { background: #e8eef7; height: 1rem; border-radius: 3px; overflow: hidden; }
  .bar span { display: block; height: 100%; background: #3b73c4; }
  .score { text-align: right; font-variant-numeric: tabular-nums; }
  .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  #error { color: #a00; white-space: pre-wrap; margin-top: 1rem; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1>t5cls</h1>
<p id="model">loading the model description...</p>
<form id="form">
  <label for="task">Task</label>
  <select id="task"></select>
  <div id="query-box" hidden>
    <label for="query">Query</label>
    <input id="query" autocomplete="off">
  </div>
  <label for="text">Text <span class="hint" id="text-hint"></span></label>
  <textarea id="text"></textarea>
  <div id="labels-box" hidden>
    <label for="labels">Labels <span class="hint">comma-separated</span></label>
    <input id="labels" autocomplete="off" placeholder="sports, politics, business">
  </div>
  <button id="submit" type="submit">Submit</button>
</form>
<div id="error" role="alert" hidden></div>
<div id="results" aria-live="polite"></div>
<script>
"use strict";
const TASKS = {
  "POST /v1/classify": {name: "Classify", labels: false, query: false},
  "POST /v1/zero-shot": {name: "Zero-shot", labels: true, query: false},
  "POST /v1/score": {name: "Label probabilities", labels: true, query: false},
  "POST /rerank": {name: "Rerank", labels: false, query: true},
};
const $ = (id) => document.getElementById(id);

function showTask() {
  const task = TASKS[$("task").value] || {};
  $("labels-box").hidden = !task.labels;
  $("query-box").hidden = !task.query;
  $("text-hint").textContent = task.query ? "one document per line" : "";
}

function labelList() {
  return $("labels").value.split(",").map((s) => s.trim()).filter((s) => s);
}

function request(route) {
  const text = $("text").value;
  if (route === "POST /v1/classify") return {inputs: [text]};
  if (route === "POST /v1/zero-shot") return {inputs: [text], candidate_labels: labelList()};
  if (route === "POST /v1/score") return {inputs: [text], labels: labelList()};
  const texts = text.split("\\n").filter((line) => line.trim());
  return {query: $("query").value, texts: texts, return_text: true};
}

function rows(route, answer) {
  if (route === "POST /v1/classify") return answer.results[0];
  if (route === "POST /rerank") return answer.map((r) => ({label: r.text, score: r.score}));
  const result = answer.results[0];
  return result.labels.map((label, i) => ({label: label, score: result.scores[i]}));
}

function draw(items) {
  const out = $("results");
  out.replaceChildren();
  for (const item of items) {
    const row = document.createElement("div");
    row.className = "result";
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = item.label;
    name.title = item.label;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = (Math.max(0, Math.min(1, item.score)) * 100).toFixed(1) + "%";
    bar.appendChild(fill);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = item.score.toFixed(4);
    row.append(name, bar, score);
    out.appendChild(row);
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function submit(event) {
  event.preventDefault();
  const route = $("task").value;
  showError("");
  $("results").replaceChildren();
  try {
    const response = await fetch(route.split(" ")[1], {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(request(route)),
    });
    const answer = await response.json();
    if (!response.ok) {
      showError(response.status + ": " + (typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer)));
      return;
    }
    draw(rows(route, answer));
  } catch (error) {
    showError(String(error));
  }
}

async function init() {
  const model = await (await fetch("v1/model", {headers: {Accept: "application/json"}})).json();
  $("model").textContent = model.path + " - " + model.kind + ", " + model.model_type + ", " + model.parameters.toLocaleString() + " parameters";
  for (const route of model.endpoints) {
    if (!TASKS[route]) continue;
    const option = document.createElement("option");
    option.value = route;
    option.textContent = TASKS[route].name;
    $("task").appendChild(option);
  }
  $("task").addEventListener("change", showTask);
  $("form").addEventListener("submit", submit);
  showTask();
  document.body.dataset.ready = "true";
}
init().catch((error) => showError("Could not read /v1/model: " + error));
</script>
</body>
</html>
"""


def add_routes(app: FastAPI, *, describe: Callable[[Request], dict[str, Any]], model_schema: dict[str, Any]) -> list[str]:
    """Add ``GET /``: the page when the request accepts ``text/html``, else ``describe(request)`` as JSON."""

    @app.get(
        "/", summary="The try-it page (Accept: text/html), else the model description", response_class=JSONResponse,
        responses={
            200: {
                "description": "The page, or the same JSON as /v1/model.",
                "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": model_schema}},
            },
            **GET_ERRORS,
        },
    )
    async def home(request: Request) -> Any:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(PAGE)
        return JSONResponse(describe(request))

    return ["GET /"]


__all__ = ["add_routes", "PAGE"]
