"""Pictures stations sent (SL651 function 36): a device's list and each JPEG."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from gateway.http.params import RowId
from gateway.storage import pictures
from gateway.storage.store import Store

if TYPE_CHECKING:
    from gateway.http.app import Context


def add_routes(app: FastAPI, ctx: Context, reader: Callable[[], Store]) -> None:
    @app.get("/api/devices/{device_id}/pictures")
    def device_pictures(device_id: str) -> list[dict[str, Any]]:
        """The device's pictures, newest observation first (times in UTC ms)."""
        if not any(d.id == device_id for d in ctx.config.devices):
            raise HTTPException(404, f"设备 {device_id} 不存在 (device {device_id} does not exist)")
        return [p.to_json() for p in pictures.listing(reader(), device_id)]

    @app.get("/api/pictures/{picture_id}", response_class=FileResponse)
    def picture(picture_id: RowId) -> FileResponse:
        """One picture's JPEG."""
        p = pictures.get(reader(), picture_id)
        if p is None:
            raise HTTPException(
                404, f"图片 {picture_id} 不存在 (picture {picture_id} does not exist)"
            )
        path = pictures.folder(ctx.db_path) / p.file
        if not path.is_file():
            raise HTTPException(
                410, f"图片文件 {p.file} 已不在 (the file of picture {picture_id} is gone)"
            )
        return FileResponse(path, media_type="image/jpeg")
