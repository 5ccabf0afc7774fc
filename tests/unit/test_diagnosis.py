"""Operator words for dependency failures: the text of real pika, psycopg2 and socket errors."""
from __future__ import annotations

import socket

from common.diagnosis import POSTGRESQL, RABBITMQ, explain

AMQP = "amqp://u:p@broker.example:5673/%2F"
DB = "postgresql://u:p@db.example/pageviews"


class ProbableAuthenticationError(Exception):
    pass


def test_broker_login_refused():
    error = ProbableAuthenticationError("(\"ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'\",)")
    assert explain(error, RABBITMQ, AMQP) == "RabbitMQ refused the login (ACCESS_REFUSED): wrong user or password in AMQP_URL"


def test_queue_with_other_arguments():
    error = Exception("(406) \"PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'pageviews.p0'\"")
    words = explain(error, RABBITMQ, AMQP)
    assert words.startswith("a queue or exchange already exists with other arguments") and "x-delivery-limit" in words and "QUEUE_PREFIX" in words


def test_connection_refused_names_host_port_and_setting():
    error = Exception("AMQPConnectorSocketConnectError: ConnectionRefusedError(111, 'Connection refused')")
    assert explain(error, RABBITMQ, AMQP) == (
        "nothing accepts connections at broker.example:5673 (connection refused): check the host and port in AMQP_URL, and that RabbitMQ is running"
    )
    assert "db.example:5432 (connection refused)" in explain(Exception('connection to server at "db.example", port 5432 failed: Connection refused'), POSTGRESQL, DB)


def test_no_route_and_unknown_host():
    assert explain(OSError(113, "No route to host"), RABBITMQ, AMQP).startswith("no route to broker.example:5673")
    assert explain(socket.gaierror(-2, "Name or service not known"), RABBITMQ, AMQP) == "the host name 'broker.example' in AMQP_URL does not resolve: check it"


def test_database_specifics():
    password = Exception('connection to server at "db.example" (10.0.0.2), port 5432 failed: FATAL:  password authentication failed for user "u"')
    assert explain(password, POSTGRESQL, DB).startswith("PostgreSQL refused the login (password authentication failed)")
    missing = Exception('connection to server failed: FATAL:  database "pageviews" does not exist')
    assert explain(missing, POSTGRESQL, DB) == 'database "pageviews" does not exist: check DATABASE_URL, or create the database and run the migrations (make migrate)'


def test_unknown_errors_keep_their_text_and_not_yet_connected():
    assert explain(ValueError("odd\nsecond line"), RABBITMQ, AMQP) == "RabbitMQ at broker.example:5673 cannot be used: ValueError: odd"
    assert explain(None, RABBITMQ, AMQP) == "not connected to RabbitMQ yet (connecting)"


def test_connection_refused_by_every_node_of_a_cluster_names_them_all():
    text = explain(ConnectionRefusedError(111, "Connection refused"), RABBITMQ, "amqp://u:p@mq1:5672/%2F,amqp://u:p@mq2:5673/%2F")
    assert "mq1:5672 or mq2:5673" in text and "p@" not in text
