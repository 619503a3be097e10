"""`mount_dashboard`: the dashboard's pages, actions and files on the server's app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ._actions import router as actions_router
from ._details import router as details_router
from ._errors import install_handlers
from ._metrics_pages import router as metrics_router
from ._overview import router as overview_router
from ._signin import router as signin_router
from ._static import STATIC_PATH, DashboardStatic, icon_router

__all__ = ["DASHBOARD_ROUTERS", "mount_dashboard"]

DASHBOARD_ROUTERS: tuple[APIRouter, ...] = (
    signin_router,
    overview_router,
    details_router,
    actions_router,
    metrics_router,
    icon_router,
)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard from `app` (made by `create_app`, whose `app.state.interlink`
    the pages read): its pages at /, /login, /runs/{id}..., its files at /static/, and
    the handlers that turn a missing session into the sign-in page."""
    for router in DASHBOARD_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PATH, DashboardStatic(), name="dashboard-static")
    install_handlers(app)
