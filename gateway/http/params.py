"""Path parameters shared by the route modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# A row id (ticket, handover): SQLite integers are 64-bit, and a larger id in a URL made
# the query raise OverflowError (a 500, found by schemathesis); now it is a 422 (also
# for ids in queries: `Query(ge=1, le=MAX_ROW_ID)`).
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
