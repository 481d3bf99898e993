"""Fuzzing the API from its own OpenAPI document (schemathesis): no 5xx, no answer outside the
documented statuses, content types and schemas, for valid and invalid requests alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from basketry.model.layout import write_layout
from basketry.monitoring import MonitorSettings
from basketry.serving import Settings, create_app
from basketry.serving.capture import Capture
from tests.serving.conftest import ADMIN, write_version
from tests.serving.test_layout_endpoint import make_plan


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    home = tmp_path_factory.mktemp("fuzz")
    model = home / "model"
    write_layout(make_plan(write_version(model, "v1")), model)  # a shelf plan to answer from
    # a store of its own: module-scoped, this runs before the autouse BASKETRY_HOME isolation
    capture = Capture(MonitorSettings(db=f"sqlite:///{home / 'monitoring.db'}"))
    application = create_app(Settings(model=str(model), admin_token=ADMIN), capture=capture)
    with TestClient(app=application):  # load the model once (lifespan)
        yield application


@pytest.fixture(scope="module")
def api_schema(app: object) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


OPERATIONS = [
    ("/v1/recommendations", "POST"),
    ("/v1/recommendations/batch", "POST"),
    ("/v1/recommendations/after-purchase", "POST"),
    ("/v1/items/{item}/associations", "GET"),
    ("/v1/model", "GET"),
    ("/healthz", "GET"),
    ("/healthz", "HEAD"),
    ("/readyz", "GET"),
    ("/readyz", "HEAD"),
    ("/metrics", "GET"),
    ("/v1/admin/reload", "POST"),
    ("/v1/orders", "POST"),
    ("/v1/monitoring/performance", "GET"),
    ("/monitor/data", "GET"),
    ("/v1/layout", "GET"),
    ("/v1/layout/items/{item}", "GET"),
]

NO_INPUT = {"/v1/model", "/healthz", "/readyz", "/metrics"}
#: Reports whose valid parameters depend on each other (since before until, at most 2,000
#: windows between them), which a schema cannot say: schema-valid values may rightly get 422,
#: so only invalid ones are fuzzed (they must be refused within the documented answers).
CROSS_FIELD = {"/v1/monitoring/performance", "/monitor/data"}


# schemathesis' own pytest plugin does not run under this pytest; hypothesis drives it instead
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE,
                                  schemathesis.GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_api_answers_within_its_schema(api_schema: schemathesis.BaseSchema, path: str,
                                       method: str, mode: schemathesis.GenerationMode) -> None:
    if mode is schemathesis.GenerationMode.NEGATIVE and path in NO_INPUT:
        pytest.skip("no parameters or body to make invalid")
    if mode is schemathesis.GenerationMode.POSITIVE and path in CROSS_FIELD:
        pytest.skip("parameters valid one by one may be refused together (since >= until)")
    operation = api_schema[path][method]
    examples = 60 if path.startswith("/v1/recommendations") else 20

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"})

    fuzz()


def test_the_fuzzed_schema_covers_every_endpoint(api_schema: schemathesis.BaseSchema) -> None:
    found = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


def test_model_dir_is_kept_between_cases(app: object) -> None:
    holder = app.state.holder  # type: ignore[attr-defined]
    assert holder.current is not None and Path(holder.current.path).is_dir()
