"""common.sql.prepared: the PREPARE and EXECUTE texts made from a statement with :name placeholders."""
from __future__ import annotations

import pytest

from common.sql.prepared import Prepared


def test_placeholders_become_positions_in_the_order_of_the_types():
    statement = Prepared("p", "SELECT CAST(:b AS int) + :a, x::text FROM t WHERE :a > 0", {"a": "int", "b": "text"})
    assert statement._prepare.text == "PREPARE p(int, text) AS SELECT CAST($2 AS int) + $1, x::text FROM t WHERE $1 > 0"
    assert statement._execute.text == "EXECUTE p(:a, :b)"


def test_a_name_is_not_taken_for_the_start_of_a_longer_one():
    statement = Prepared("p", "SELECT :views, :visitors", {"views": "int", "visitors": "int"})
    assert statement._prepare.text.endswith("SELECT $1, $2")


def test_a_type_for_a_placeholder_the_statement_lacks_is_refused():
    with pytest.raises(ValueError, match=":b is not in the statement"):
        Prepared("p", "SELECT :a", {"a": "int", "b": "int"})


def test_a_placeholder_without_a_type_is_refused():
    with pytest.raises(ValueError, match="placeholder :b has no type"):
        Prepared("p", "SELECT :a, :b", {"a": "int"})
