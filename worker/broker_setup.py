"""`python -m worker.broker_setup`: the broker-side settings no application process may change.

1. The partition queues' policy, named ``<prefix>.partitions`` and matching only
   ``^<prefix>\\.p[0-9]+$`` (so deployments and test runs with other prefixes never
   touch each other's queues): ``max-length`` (QUEUE_MAX_LENGTH), ``max-length-bytes``
   (QUEUE_MAX_BYTES), ``overflow: reject-publish`` and ``delivery-limit``
   (DELIVERY_LIMIT). A policy, not queue arguments: RabbitMQ applies a changed policy to
   existing queues at once, while a changed argument makes every later declaration fail
   with PRECONDITION_FAILED.
2. With ``--app-url amqp://user:password@host/vhost``: that user, with no tags and
   configure/write/read permissions on the prefix's queues and exchanges only.

A separate step rather than something the API and workers do at start: it needs the
management API and a user allowed to set policies and create users, which the
application's own user must not be. It is idempotent (PUTs); docker compose runs it
before the application, `make run` and the tests before each start. Run it again after
changing QUEUE_MAX_LENGTH, QUEUE_MAX_BYTES or DELIVERY_LIMIT: no restart is needed.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from common import process
from common.config import Settings
from common.logging import fields
from common.management import Management, management_url_for, partition_pattern, resources_pattern, vhost_of

log = logging.getLogger("worker.broker_setup")

# Above the default 0, so a catch-all policy of an operator's does not replace ours
# (only one policy applies to a queue: the one with the highest priority).
POLICY_PRIORITY = 10


def policy_name(prefix: str) -> str:
    return f"{prefix}.partitions"


def policy_definition(settings: Settings) -> dict[str, Any]:
    return {
        "max-length": settings.queue_max_length,
        "max-length-bytes": settings.queue_max_bytes,
        "overflow": "reject-publish",
        "delivery-limit": settings.delivery_limit,
    }


def management(settings: Settings) -> Management:
    # Any node of a cluster serves the whole cluster's policies and users: the first URL's.
    return Management(settings.broker_management_url or management_url_for(settings.amqp_urls[0]))


def apply_policy(settings: Settings) -> None:
    vhost = vhost_of(settings.amqp_urls[0])
    definition = policy_definition(settings)
    management(settings).put_policy(vhost, policy_name(settings.queue_prefix), partition_pattern(settings.queue_prefix), definition, priority=POLICY_PRIORITY)
    log.info("partition queue policy applied", extra=fields(policy=policy_name(settings.queue_prefix), vhost=vhost, **definition))


def remove_policy(settings: Settings) -> None:
    management(settings).delete_policy(vhost_of(settings.amqp_urls[0]), policy_name(settings.queue_prefix))


def grant_app_user(settings: Settings, app_url: str) -> str:
    """Create or update the application's user: no tags, rights on this prefix's names only."""
    parts = urlsplit(app_url)
    if not parts.username or not parts.password:
        raise SystemExit("broker_setup: --app-url needs a user and a password")
    user, vhost = unquote(parts.username), vhost_of(app_url)
    api = management(settings)
    api.put_user(user, unquote(parts.password), tags="")
    own = resources_pattern(settings.queue_prefix)
    # Not the default exchange: RabbitMQ checks write on the exchange only, and the default
    # one routes to any queue of the vhost by name. The API publishes to <prefix>.in.
    api.put_permissions(vhost, user, configure=own, write=own, read=own)
    log.info("application user granted", extra=fields(user=user, vhost=vhost, resources=own))
    return user


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.broker_setup", description=__doc__.splitlines()[0])
    parser.add_argument("--app-url", help="amqp://user:password@host/vhost of the application's user to create")
    args = parser.parse_args(argv)
    settings = process.start("broker_setup")
    apply_policy(settings)
    if args.app_url:
        grant_app_user(settings, args.app_url)


if __name__ == "__main__":
    main()

