"""The web page: a sample playground and the training jobs with live plots."""
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    return HTMLResponse(resources.files("service").joinpath("static/index.html").read_text())
