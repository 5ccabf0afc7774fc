"""Pieces of SQL that more than one concern spells the same way.

page_views holds hourly counts. ``page_key`` (md5 of the page, as a uuid, a generated
column) is what the primary key indexes: a btree entry is limited to about 2.7 kB, and a
2048-character page of CJK text is 6 kB, so the literal page cannot be the key. Queries
still compare ``page`` too; md5 collisions are negligible (2^-64 at four billion pages).
The page key expression (PAGE_KEY below) is spelled here and in the migrations only.
"""
from __future__ import annotations

PAGE_KEY = "CAST(md5(:page) AS uuid)"

# Visitors sketches (DESIGN.md): log2m 14, regwidth 5, explicit threshold auto, sparse on.
# Exact while small (explicit mode keeps the ids themselves, up to 1280 of them), about
# 0.8 % standard error at scale (1.04 / sqrt(2^14)), 10 kB at most per row. Visitor ids
# are keyed BLAKE2b output, already uniform, so they are cast to hashvals, not hashed again.
HLL_PARAMETERS = "14, 5, -1, 1"
# hll_union is STRICT (NULL if either side is NULL); rows of single and multi have no sketch.
UNION_VISITORS = "visitors = coalesce(hll_union({table}.visitors, EXCLUDED.visitors), {table}.visitors, EXCLUDED.visitors)"
MERGE_VISITORS = UNION_VISITORS.format(table="page_views")

# hll_union_agg allocates a full sketch state per group even when every input is NULL
# (about 12 kB: 720 hourly groups spilled to disk); FILTER skips the rows without one.
UNION_AGG = "hll_union_agg({column}) FILTER (WHERE {column} IS NOT NULL)"
