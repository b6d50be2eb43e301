"""Generated requests for every operation of the schema, with a key, against a real keyed server: no 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.utils import serve

pytestmark = pytest.mark.system
KEY = "fuzz-key-7e21"
EXAMPLES = 15


@pytest.fixture(scope="module")
def fuzzed(serving_repository, redis_url, tmp_path_factory):
    """Small limits, so that generated requests stay cheap; a Redis database no worker reads."""
    srv = serve(serving_repository, tmp_path_factory.mktemp("fuzz"), api_keys=KEY, max_n=64, max_dataset_n=300,
                max_candidates=2000, max_dataset_candidates=3000, max_steps=50, max_upload_bytes=200_000,
                redis_url=redis_url.rsplit("/", 1)[0] + "/5", rate_per_second=0, reconcile_seconds=3600)
    yield srv
    srv.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_5xx(fuzzed, mode):
    schema = schemathesis.openapi.from_url(fuzzed.url + "/openapi.json")
    # A job's event stream lasts as long as the job: with no worker that is forever.
    operations = [r.ok() for r in schema.exclude(path_regex=r"/events$").get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(checks=[not_a_server_error], headers={"Authorization": f"Bearer {KEY}"},
                                   timeout=30)

        try:
            check()
        except Unsatisfiable:  # an operation that takes nothing can have no negative case
            assert mode == GenerationMode.NEGATIVE
