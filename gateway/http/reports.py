"""HTTP routes of the reports: the monthly report and a shift handover record as HTML or
PDF. A plain APIRouter: whoever mounts it decides who may read it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from gateway.http.params import RowId
from gateway.reports import documents
from gateway.reports.handover import HandoverNotFound
from gateway.reports.pdf import PdfError

if TYPE_CHECKING:
    from gateway.http.app import Context


def _response(doc: documents.Document) -> Response:
    return Response(
        doc.data,
        media_type=doc.media_type,
        headers={"Content-Disposition": f'inline; filename="{doc.name}"'},
    )


def router(ctx: Context) -> APIRouter:
    r = APIRouter(tags=["reports"])

    @r.get("/api/reports/monthly")
    def monthly(
        month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-07"])],
        format: Literal["html", "pdf"] = "html",
    ) -> Response:
        """月度安全形势分析报告 for a month of station time (local midnight to midnight)."""
        conn = documents.open_db(ctx.db_path)
        try:
            doc = documents.monthly_document(
                conn, ctx.config, month, format, time.time_ns() // 1_000_000
            )
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except PdfError as e:
            raise HTTPException(503, str(e)) from None
        finally:
            conn.close()
        return _response(doc)

    @r.get("/api/reports/handovers/{handover_id}")
    def handover(handover_id: RowId, format: Literal["html", "pdf"] = "html") -> Response:
        """交接班记录 of one shift handover."""
        conn = documents.open_db(ctx.db_path)
        try:
            doc = documents.handover_document(conn, ctx.config, handover_id, format)
        except HandoverNotFound as e:
            raise HTTPException(404, str(e)) from None
        except PdfError as e:
            raise HTTPException(503, str(e)) from None
        finally:
            conn.close()
        return _response(doc)

    return r
