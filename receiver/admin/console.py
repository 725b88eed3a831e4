"""The admin console: server-rendered pages of the inbox's events (placeholder)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from receiver.admin.context import AdminContext

__all__ = ["console_routes"]


def console_routes(ctx: AdminContext) -> list[BaseRoute]:
    """The console's routes."""
    return []
