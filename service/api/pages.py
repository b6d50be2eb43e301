"""The web page: a sample playground and the training jobs with live plots; and its icon."""
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)


def _static(name: str) -> str:
    return resources.files("service").joinpath(f"static/{name}").read_text()


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    return HTMLResponse(_static("index.html"))


@router.get("/favicon.ico")
def favicon() -> Response:
    """The page's icon where browsers look for it first: a small SVG (every current browser draws one)."""
    return Response(_static("favicon.svg"), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
