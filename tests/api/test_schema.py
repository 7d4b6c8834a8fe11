"""The OpenAPI schema documents every endpoint and is valid; schemathesis finds no 5xx and no undocumented shape."""

from __future__ import annotations

import copy
import io

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.factories import CustomerFactory

EXPECTED = {
    ("get", "/api/qbo/jobs/"), ("get", "/api/qbo/jobs/{id}/"), ("post", "/api/qbo/jobs/{id}/cancel/"),
    ("get", "/api/qbo/progress/"), ("post", "/api/qbo/sync/"), ("get", "/api/qbo/conflicts/"),
    ("get", "/api/qbo/conflicts/{id}/"), ("post", "/api/qbo/conflicts/{id}/resolve/"), ("get", "/api/qbo/connection/"),
    ("post", "/api/qbo/connection/pause/"), ("post", "/api/qbo/connection/resume/"),
    ("get", "/api/qbo/entities/{entity}/{object_id}/status/"), ("get", "/api/qbo/audit/"),
}


@pytest.mark.django_db
def test_spectacular_validate_fail_on_warn(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stdout=io.StringIO(),
                 stderr=io.StringIO())
    text = out.read_text()
    assert "X-Organization" in text and "name: org" in text


@pytest.mark.django_db
def test_schema_documents_every_endpoint(client, user_a):
    client.force_login(user_a)  # outside DEBUG the schema is for signed-in users (test_production_checks.py)
    schema = client.get("/api/schema/?format=json").json()
    documented = {(method, path) for path, ops in schema["paths"].items() for method in ops
                  if path.startswith("/api/qbo/")}
    assert documented == EXPECTED
    for path, ops in schema["paths"].items():
        for op in ops.values():
            names = {p["name"] for p in op.get("parameters", [])}
            assert {"org", "X-Organization"} <= names, path


SCHEMA_PATH = "/api/schema/?format=json"
#: The schema as the app served it, read once per test process: generating it is a third of each test's setup, and
#: it depends on the code only (the data each test makes is its own).
_SERVED_SCHEMA: dict = {}


@pytest.fixture
def api_schema(db, settings, org_a, user_a, make_push_job, make_conflict):
    """The live schema, served by the WSGI app, with data to find: jobs, a conflict, customers of org A."""
    make_push_job(org_a, 3)
    make_conflict(org_a)
    CustomerFactory.create_batch(2, organization=org_a)
    # The WSGI app sends request_started/finished, whose close_old_connections would close the test's connection
    # (and its transaction) on PostgreSQL; Django's test client disconnects it the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        app = get_wsgi_application()
        if not _SERVED_SCHEMA:
            settings.DEBUG = True  # the schema is read anonymously (only while DEBUG is on), the calls are then made
            _SERVED_SCHEMA.update(schemathesis.openapi.from_wsgi(SCHEMA_PATH, app).raw_schema)
        schema = schemathesis.openapi.from_dict(copy.deepcopy(_SERVED_SCHEMA))
        schema.app, schema.location = app, SCHEMA_PATH  # what from_wsgi sets: the calls go through the WSGI app
        settings.DEBUG = False  # as a deployment answers them
        yield schema
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(user_a):
    return {"Authorization": f"Token {Token.objects.create(user=user_a).key}"}


# schemathesis' own pytest loader (``from_fixture``) does not run under pytest 9 yet: drive each operation's
# hypothesis strategy directly, one test per documented operation.
@pytest.mark.parametrize("method, path", sorted(EXPECTED))
def test_no_server_errors(api_schema, auth_headers, method, path):
    operation = api_schema[path][method.upper()]

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(headers=auth_headers,
                               checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

    check()


@pytest.mark.django_db
def test_api_docs_page_loads_swagger_ui_from_our_own_static_files(client, user_a):
    """/api/docs/ works offline: Swagger UI comes from drf-spectacular-sidecar's static files, not a CDN."""
    import re

    from django.contrib.staticfiles import finders

    client.force_login(user_a)
    html = client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [s for s in sources if "swagger-ui" in s]
    assert assets, html
    assert not [s for s in sources if s.startswith(("http://", "https://", "//"))], sources
    for src in assets:
        path = src.split("?")[0].removeprefix("/static/")
        assert finders.find(path), f"{src} is not a static file this project serves"
