"""Fixtures of the cluster tests: each test brings up its own RabbitMQ cluster or PostgreSQL replica and removes it."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.cluster.clusters import PgReplica, RabbitCluster


@pytest.fixture
def rabbitmq_cluster() -> Iterator[RabbitCluster]:
    why_not = RabbitCluster.available()
    if why_not:
        pytest.skip(why_not)
    # Not under pytest's tmp_path: other pytest runs on the machine prune old base folders.
    cluster = RabbitCluster(Path(tempfile.mkdtemp(prefix="pageviews-rabbitmq-cluster-")))
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def pg_replica(backend) -> Iterator[PgReplica]:
    why_not = PgReplica.available()
    if why_not:
        pytest.skip(why_not)
    if backend.kind != "local":
        pytest.skip(f"the replica is made from the local PostgreSQL; the tests use the {backend.kind} one")
    replica = PgReplica()
    try:
        replica.run("up")
        yield replica
    finally:
        replica.run("down")
