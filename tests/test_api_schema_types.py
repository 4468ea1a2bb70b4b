"""Every request and response body of the API is described in the OpenAPI schema: no untyped object.

The walk follows `$ref`s, arrays, `allOf`/`oneOf`/`anyOf` and properties. An object is typed when it
lists its properties or gives its values a schema (`additionalProperties: {type: ...}`); an object
with neither, or a value with no type at all (drf-spectacular's rendering of a bare JSONField), is
untyped. A body that is truly free-form goes into FREE_FORM with the reason.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from tests.factories import PASSWORD

# An entry as untyped_bodies words it ("METHOD path what: pointer") -> why its shape cannot be stated. None today.
FREE_FORM: dict[str, str] = {}
BODY_STATUSES = ("200", "201", "202")  # answers that carry a body (204 and the errors' own are apart)


def _untyped(schema: dict, components: dict, where: str, seen: frozenset[str] = frozenset()) -> Iterator[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:  # a recursive component is walked once
            yield from _untyped(components[name], components, f"{where}<{name}>", seen | {name})
        return
    for key in ("allOf", "oneOf", "anyOf"):
        for n, part in enumerate(schema.get(key, [])):
            yield from _untyped(part, components, f"{where}.{key}[{n}]", seen)
    if any(key in schema for key in ("allOf", "oneOf", "anyOf")):
        return
    kind = schema.get("type")
    if kind == "array":
        yield from _untyped(schema.get("items", {}), components, f"{where}[]", seen)
        return
    if kind not in (None, "object"):
        return  # a string, number, integer or boolean (with its format or enum)
    if "enum" in schema:
        return
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for name, part in properties.items():
        yield from _untyped(part, components, f"{where}.{name}", seen)
    if isinstance(extra, dict) and extra:
        yield from _untyped(extra, components, f"{where}{{}}", seen)
    elif not properties:
        yield where or "(the body)"


def untyped_bodies(schema: dict) -> list[str]:
    """'METHOD path what: pointer' for every untyped object in a request or response body; also every
    answer with a body status whose body is not described at all."""
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            bodies = [(f"request {ct}", c.get("schema", {}))
                      for ct, c in op.get("requestBody", {}).get("content", {}).items()]
            for code, answer in op.get("responses", {}).items():
                if code in BODY_STATUSES and not answer.get("content"):
                    found.append(f"{method.upper()} {path} {code}: (no body described)")
                bodies += [(f"{code} {ct}", c.get("schema", {})) for ct, c in answer.get("content", {}).items()]
            for what, body in bodies:
                found += [f"{method.upper()} {path} {what}: {p}" for p in _untyped(body, components, "")]
    return found


@pytest.mark.django_db
def test_every_request_and_response_body_of_the_api_is_typed(requester):
    client = Client()
    assert client.login(username=requester.username, password=PASSWORD)
    schema = client.get("/api/schema/?format=json").json()
    assert len(schema["paths"]) > 40  # the whole API, not a fragment
    found = [f for f in untyped_bodies(schema) if f not in FREE_FORM]
    assert found == [], "\n".join(found)


def test_the_walk_finds_untyped_objects_wherever_they_hide():
    schema = {
        "paths": {
            "/a/": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/A"}}}}}}},
            "/b/": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": {}}}}}, "responses": {"201": {"description": "made"}}}},
            "/c/": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": {"type": "number"},
                "properties": {"names": {"type": "array", "items": {"type": "string"}}}}}}}}}},
        },
        "components": {"schemas": {
            "A": {"type": "object", "properties": {
                "id": {"type": "integer"}, "meta": {},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/B"}},
                "me": {"$ref": "#/components/schemas/A"},
            }},
            "B": {"type": "object", "properties": {"summary": {"type": "object"}}},
        }},
    }
    assert untyped_bodies(schema) == [
        "GET /a/ 200 application/json: <A>.meta",
        "GET /a/ 200 application/json: <A>.rows[]<B>.summary",
        "POST /b/ 201: (no body described)",
        "POST /b/ request application/json: (the body)",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:::crowdkit")
def test_real_answers_conform_to_the_typed_schema(live_server, media_root, tiny_mixture_dir,
                                                  django_capture_on_commit_callbacks):
    """The types above are checked against what the server really sends: every GET of the API that a
    requester can call without arguments, and the detail (and actions) of the first row each list gives,
    validated by schemathesis (an outside validator) against the served schema."""
    import requests
    import schemathesis

    from tests.factories import make_hits, make_job, make_registered_pipeline, make_user
    from units.dissection.services import job_start
    from tests.results.helpers import answer
    from units.results.services import aggregation_run_layer

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=1)
    annie, otto = make_user("annie", qualified=True), make_user("otto", qualified=True)
    for hit in make_hits(job):
        answer(hit, annie, hit.unit.iou_label, "object")
        answer(hit, otto, "dog", "object")
    aggregation_run_layer(layer=job.layer_set.get(), adapt=False)
    dissected = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=2)  # a real engine run:
    with django_capture_on_commit_callbacks(execute=True):  # its layer summary, plan and timings
        job_start(job=dissected)
    dissected.refresh_from_db()
    assert dissected.status == "succeeded", dissected.error_message
    make_user("rita", requester=True)
    base = live_server.url
    token = requests.post(f"{base}/api/v1/auth/token/", data={"username": "rita", "password": PASSWORD},
                          timeout=30).json()["token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    raw = session.get(f"{base}/api/schema/?format=json", timeout=60).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = {(op.method.upper(), op.path): op for op in (r.ok() for r in schema.get_all_operations())}

    first_ids: dict[str, int] = {}
    checked, failures = [], []

    def check(path: str, url: str) -> dict | list | None:
        response = session.get(url, timeout=60)
        if response.status_code != 200:
            return None
        try:
            operations[("GET", path)].validate_response(response)
        except Exception as exc:  # noqa: BLE001 - schemathesis raises a group of failures; keep its text
            failures.append(f"GET {url}: {' '.join(str(exc).split())[:300]}")
        checked.append(path)
        return response.json() if "json" in response.headers.get("Content-Type", "") else None

    for method, path in sorted(operations):
        if method == "GET" and "{" not in path:
            body = check(path, f"{base}{path}")
            rows = body.get("results") if isinstance(body, dict) else None
            if rows and "id" in rows[0]:
                first_ids[path] = rows[0]["id"]
    first_ids["/api/v1/layers/"] = dissected.layer_set.get().pk  # the real layer's summary, not a factory's
    first_ids["/api/v1/jobs/"] = dissected.pk
    for method, path in sorted(operations):
        prefix = path.split("{id}")[0]
        if method == "GET" and path.count("{") == 1 and "{id}" in path and prefix in first_ids:
            check(path, f"{base}{path.replace('{id}', str(first_ids[prefix]))}")
    assert failures == [], "\n".join(failures)
    assert len(checked) > 25 and "/api/v1/labels/{id}/" in checked and "/api/v1/aggregation-runs/{id}/" in checked
