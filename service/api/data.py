"""Uploaded training data: POST a zip of class folders or an .npz, then train on its id."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from service import uploads
from service.api.deps import KeyDep, SettingsDep
from service.api.responses import Upload, Uploads, error_responses
from service.api.strict import StrictJSONRoute

router = APIRouter(prefix="/v1/data", tags=["data"], responses=error_responses(), route_class=StrictJSONRoute)


@router.post("", status_code=201, dependencies=[KeyDep], operation_id="uploadData", response_model=Upload,
             responses=error_responses(401, 403, 413, 422, 507))
async def upload(request: Request, file: Annotated[UploadFile, File(description="a .zip or .npz")],
                 settings: SettingsDep) -> dict:
    """Store training data whole or not at all; the answer's id goes into a job's `data`."""
    owner = request.state.caller.bucket  # queue bounds and quotas count per key (or address)
    # The multipart parser has spooled the file (to disk past 1 MB): it is read from there, never copied whole
    # into memory; the guard has bounded the body by max_upload_bytes.
    return await run_in_threadpool(uploads.store, file.file, file.filename or "upload", settings, owner)


@router.get("", operation_id="listUploads", response_model=Uploads, dependencies=[KeyDep],
            responses=error_responses(401, 403))
def list_uploads(settings: SettingsDep) -> dict:
    """Every upload, newest first."""
    return {"data": uploads.list_all(settings)}


@router.get("/{upload_id}", operation_id="getUpload", response_model=Upload, dependencies=[KeyDep],
            responses=error_responses(401, 403, 404, 422))
def get_upload(upload_id: str, settings: SettingsDep) -> dict:
    return uploads.read(upload_id, settings)
