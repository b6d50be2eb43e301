"""Uploaded training data: POST a zip of class folders or an .npz, then train on its id."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from service import uploads
from service.api.deps import CallerDep, KeyDep, SettingsDep, StoreDep
from service.api.responses import Upload, Uploads, error_responses
from service.api.strict import StrictJSONRoute

router = APIRouter(prefix="/v1/data", tags=["data"], responses=error_responses(), route_class=StrictJSONRoute)
Limit = Annotated[int, Query(ge=1, le=500, description="uploads per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="the previous page's next_cursor")]


@router.post("", status_code=201, dependencies=[KeyDep], operation_id="uploadData", response_model=Upload,
             responses=error_responses(401, 403, 413, 422, 507))
async def upload(file: Annotated[UploadFile, File(description="a .zip or .npz")], settings: SettingsDep,
                 store: StoreDep, caller: CallerDep) -> dict:
    """Store training data whole or not at all; the answer's id goes into a job's `data`. The upload is the key's,
    and counts against its storage quota."""
    # The multipart parser has spooled the file (to disk past 1 MB): it is read from there, never copied whole
    # into memory; the guard has bounded the body by max_upload_bytes.
    return await run_in_threadpool(uploads.store, file.file, file.filename or "upload", settings, store, caller.id)


@router.get("", operation_id="listUploads", response_model=Uploads, dependencies=[KeyDep],
            responses=error_responses(401, 403, 422))
def list_uploads(store: StoreDep, caller: CallerDep, limit: Limit = 50, cursor: Cursor = None) -> dict:
    """The key's uploads (an admin's: all), newest first, a page at a time: pass `next_cursor` back as `cursor`."""
    page, next_cursor = store.uploads.page(owner=caller.sees, limit=limit, cursor=cursor)
    return {"data": page, "next_cursor": next_cursor}


@router.get("/{upload_id}", operation_id="getUpload", response_model=Upload, dependencies=[KeyDep],
            responses=error_responses(401, 403, 404, 422))
def get_upload(upload_id: str, store: StoreDep, caller: CallerDep) -> dict:
    """One of the key's uploads; another key's is 404, as if it did not exist."""
    return uploads.read(upload_id, store, caller.sees)


@router.delete("/{upload_id}", status_code=204, operation_id="deleteUpload", dependencies=[KeyDep],
               responses=error_responses(401, 403, 404, 422))
def delete_upload(upload_id: str, store: StoreDep, caller: CallerDep) -> Response:
    """Delete one of the key's uploads and free its quota (jobs already training on it finish)."""
    store.uploads.delete(upload_id, caller.sees)
    return Response(status_code=204)
