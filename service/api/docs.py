"""API docs that work offline: Swagger UI at /docs and ReDoc at /redoc, their assets served from here.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet /docs
is blank. The assets come from the `fastapi-offline` package (its static folder: Swagger UI's
bundle and CSS, ReDoc's standalone bundle, a favicon) rather than files copied into this project,
so upgrading them is a dependency bump. ReDoc's sidebar still asks a CDN for Redocly's logo; the
pages' Content-Security-Policy keeps that (and anything else) on this machine.
"""
from __future__ import annotations

from importlib import resources
from typing import Callable

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# validatorUrl None: Swagger UI would otherwise fetch a badge from validator.swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True, "displayOperationId": True}
# Both UIs run inline scripts and styles; ReDoc builds its search worker from a blob.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def assets_folder() -> str:
    return str(resources.files("fastapi_offline").joinpath("static"))


# operation id -> what to write into that operation when the schema is made: the parts of the schema that
# registries (modes, formats) decide, read then so that a mode or format registered later is listed too.
LATE: dict[str, list[Callable[[dict], None]]] = {}


def late(operation_id: str):
    """Decorate a function that completes an operation's schema when /openapi.json is first made."""
    def register(patch: Callable[[dict], None]) -> Callable[[dict], None]:
        LATE.setdefault(operation_id, []).append(patch)
        return patch
    return register


COMPONENTS: list[type] = []  # request models a route decodes itself (service/api/bodies.py)


def component(model: type) -> None:
    """List a model among the schema's components (a route that decodes its own body refers to it)."""
    if model not in COMPONENTS:
        COMPONENTS.append(model)


def openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with the COMPONENTS added and each LATE operation completed; made once per app."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in COMPONENTS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for patch in LATE.get(operation.get("operationId"), []):
                    patch(operation)
        app.openapi_schema = schema
    return app.openapi_schema


def install(app: FastAPI) -> None:
    """Mount the assets and add /docs, /docs/oauth2-redirect and /redoc (none of them in the schema)."""
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=assets_folder()), name="docs-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _local(get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API", oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png", swagger_ui_parameters=SWAGGER_PARAMETERS))

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _local(get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png", with_google_fonts=False))


def _local(page: HTMLResponse) -> HTMLResponse:
    """The page may load only what this service serves."""
    page.headers["Content-Security-Policy"] = CSP
    return page
