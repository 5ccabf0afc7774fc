"""kill -9 of a worker in the middle of a load, then a restart: every 2xx view counted exactly once."""
from __future__ import annotations

import pytest

from tests.exactness import compare, drain
from tests.helpers import total_views, wait_for
from tests.load import LoadGenerator

pytestmark = pytest.mark.fault


def test_worker_killed_mid_load_loses_and_duplicates_nothing(settings, start_api, start_worker, engine, record_figures):
    api = start_api()
    worker = start_worker()
    load = LoadGenerator(api.base_url, threads=6, plain_share=0.3).start(max_requests=4000)

    # Kill twice while views are flowing, each time once the worker has made progress.
    for round_ in range(2):
        floor = total_views(engine)
        wait_for(lambda: total_views(engine) > floor + 3000, timeout=60, what=f"progress before kill {round_ + 1}")
        worker.kill()
        worker = start_worker()

    ledger = load.join(timeout=300)
    drain(api, settings, engine)
    figures = compare("worker kill -9 x2", ledger, engine)
    record_figures(figures)
    assert ledger.accepted_views >= 20_000, figures.line()
    assert ledger.gave_up == 0, figures.line()
    assert (figures.lost, figures.duplicated) == (0, 0), figures.line()
