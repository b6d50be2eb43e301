"""The OpenAPI schema a client is generated from: typed answers, the real error body, stable names, keys."""
from __future__ import annotations

import re

import pytest

from service.app import create_app

KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()  # routes not held to the typed-schema tests (none now)
STATUS_BODIES = {("get", "/readyz", "503")}  # a readiness probe answers its own typed body, ready or not
KEYED = {("post", "/v1/jobs"), ("delete", "/v1/jobs/{job_id}"), ("post", "/v1/data"), ("delete", "/v1/data/{upload_id}"), ("post", "/v1/models/{name}/versions"), ("post", "/v1/models/{name}/reload"),
         ("put", "/v1/models/{name}/aliases/{alias}"), ("delete", "/v1/models/{name}/versions/{version}"),
         ("get", "/v1/jobs"), ("get", "/v1/jobs/{job_id}"), ("get", "/v1/jobs/{job_id}/events"),
         ("get", "/v1/jobs/{job_id}/snapshots/{file}"), ("get", "/v1/data"), ("get", "/v1/data/{upload_id}")}
ERROR = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def schema() -> dict:
    return create_app().openapi()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_every_json_answer_has_a_typed_schema(schema):
    untyped = []
    for method, path, operation in operations(schema):
        if (method, path) in KNOWN_EXCEPTIONS:
            continue
        for status, response in operation["responses"].items():
            json_schema = response.get("content", {}).get("application/json", {}).get("schema")
            if "application/json" in response.get("content", {}) and "$ref" not in (json_schema or {}):
                untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []


def test_every_error_answer_is_the_real_error_body(schema):
    wrong = []
    for method, path, operation in operations(schema):
        if (method, path) in KNOWN_EXCEPTIONS:
            continue
        errors = {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}
        if "500" not in errors:
            wrong.append(f"{method.upper()} {path}: no 500")
        for status, response in errors.items():
            if (method, path, status) in STATUS_BODIES:
                continue
            if response["content"]["application/json"]["schema"] != {"$ref": ERROR}:
                wrong.append(f"{method.upper()} {path} {status}")
        if (operation.get("parameters") or operation.get("requestBody")) and "422" not in errors:
            wrong.append(f"{method.upper()} {path}: takes input, declares no 422")
    assert wrong == []
    body = schema["components"]["schemas"]["ErrorDetail"]
    assert set(body["required"]) == {"status", "message"} and {"field", "problems"} <= set(body["properties"])


def test_operation_ids_are_stable_readable_and_unique(schema):
    ids = {(m, p): op["operationId"] for m, p, op in operations(schema)}
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert {ids["post", "/v1/models/{name}/samples"], ids["get", "/v1/models/{name}/samples.png"],
            ids["post", "/v1/jobs"], ids["get", "/v1/jobs"], ids["get", "/v1/jobs/{job_id}"],
            ids["delete", "/v1/jobs/{job_id}"], ids["get", "/v1/jobs/{job_id}/events"], ids["post", "/v1/data"],
            ids["post", "/v1/datasets"], ids["get", "/v1/families"], ids["get", "/v1/limits"],
            ids["post", "/v1/models/{name}/translate"]} == {
        "sampleModel", "samplePng", "submitJob", "listJobs", "getJob", "cancelJob", "jobEvents", "uploadData",
        "createDataset", "listFamilies", "getLimits", "translateImages"}


def test_keyed_routes_carry_the_bearer_scheme_and_open_ones_do_not(schema):
    scheme = schema["components"]["securitySchemes"]["apiKey"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    secured = {(m, p) for m, p, op in operations(schema) if op.get("security") == [{"apiKey": []}]}
    assert secured == KEYED
    for method, path in KEYED:
        assert {"401", "403"} <= set(schema["paths"][path][method]["responses"])


def test_docs_pages_are_not_operations(schema):
    assert not any(path.startswith(("/docs", "/redoc")) for path in schema["paths"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_this_service_serves(page):
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    html = client.get(page)
    assert html.status_code == 200 and "default-src 'self'" in html.headers["content-security-policy"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert urls and all(url.startswith("/docs-assets/") for url in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
