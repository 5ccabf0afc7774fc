"""Property-based fuzzing of a live API against api/openapi.yaml (schemathesis, bounded examples).

Every generated request, valid or not: no 5xx, the answer matches the description (status,
content type, body, headers), and afterwards the database holds exactly the views of the
2xx answers: nothing of a rejected request was counted.
"""
from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from sqlalchemy import text

from api.openapi import DESCRIPTION
from api.validation import idempotency_key_problem
from common.broker import BrokerAdmin, Topology
from common.config import Settings
from tests.helpers import ApiProcess, Process, free_port, total_views, wait_for
from tests.unit.test_openapi import routed
from worker import broker_setup

INGEST_TOKEN = "fuzz-ingest-token-0123456789"
REPORT_TOKEN = "fuzz-report-token-0123456789"
EXAMPLES = 40  # per operation: the whole module stays under a minute
# Only what exists in this build: endpoints other branches add are fuzzed once merged.
ROUTED = {path for path, _method in routed()}

# A request the schema calls invalid may be refused with any of our 4xx: an over-large body
# (413) or a wrong media type (415) is as much a refusal as a 400.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "413", "415", "429"]}}}
)
schema = schemathesis.openapi.from_path(str(DESCRIPTION), config=CONFIG).include(lambda ctx: ctx.operation.path in ROUTED)
accepted_views: list[int] = []


@pytest.fixture(scope="module")
def fuzz_settings(backend, database_url, engine):
    chosen = Settings.from_mapping(
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": backend.amqp_url,
            "BROKER_MANAGEMENT_URL": backend.management_url,
            "QUEUE_PREFIX": f"test.fuzz.{uuid.uuid4().hex[:8]}",
            "PORT": free_port(),
            "NUM_PARTITIONS": 2,
            "API_PROCESSES": 1,
            "FLUSH_INTERVAL_MS": 100,
            "INGEST_TOKENS": INGEST_TOKEN,
            "REPORT_TOKENS": REPORT_TOKEN,
        }
    )
    broker_setup.apply_policy(chosen)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE page_views, applied_messages"))
    yield chosen
    with BrokerAdmin(chosen.amqp_url) as admin:
        admin.delete_topology(Topology(chosen.queue_prefix, chosen.num_partitions))
    broker_setup.remove_policy(chosen)


@pytest.fixture(scope="module")
def fuzz_api(fuzz_settings):
    api = ApiProcess(fuzz_settings)
    yield api
    api.close()


def authorization(case) -> dict[str, str]:
    token = INGEST_TOKEN if case.operation.path.startswith("/page-views/") else REPORT_TOKEN
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_holds_to_its_description(case, fuzz_api):
    headers = {**(case.headers or {}), **authorization(case)}  # a valid token, not a generated one
    key = headers.get("Idempotency-Key")
    if key is not None and idempotency_key_problem(key) is None:
        # Generated keys repeat ("0", "0", ...), and a repeated key is counted once by design;
        # a fresh valid key keeps the check below simple: every 202 counts.
        headers["Idempotency-Key"] = str(uuid.uuid4())
    # Whether a timestamp is inside the retention window depends on the clock, which a
    # schema cannot say: valid-looking bodies may be refused, and that is not a failure.
    response = case.call_and_validate(base_url=fuzz_api.base_url, headers=headers, excluded_checks=[checks.positive_data_acceptance])
    if response.status_code == 202:
        accepted_views.append(response.json()["accepted"])


def test_nothing_of_a_rejected_request_was_counted(fuzz_settings, engine):
    worker = Process("worker", "worker", fuzz_settings)
    try:
        expected = sum(accepted_views)
        assert accepted_views, "the fuzzer never got a view accepted: the exactness check below would prove nothing"
        print(f"fuzz: {len(accepted_views)} requests accepted, {expected} views")
        wait_for(lambda: total_views(engine) == expected, timeout=60, what=f"the {expected} views of the 2xx answers")
        with BrokerAdmin(fuzz_settings.amqp_url) as admin:
            topology = Topology(fuzz_settings.queue_prefix, fuzz_settings.num_partitions)
            wait_for(lambda: all(admin.message_count(topology.partition_queue(p)) == 0 for p in range(topology.num_partitions)), what="empty queues")
        assert total_views(engine) == expected
    finally:
        worker.close()
