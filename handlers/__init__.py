"""What integrators use: handler base classes and typed event catalogs, one package per provider."""

from handlers.base import Handler
from handlers.buzzeasy import BuzzeasyEvent, BuzzeasyHandler
from handlers.engage import CallDetailsEvent, WebServicesHandler, WfmEvent, WfmHandler
from handlers.enreach import EnreachEvent, EnreachHandler

__all__ = [
    "BuzzeasyEvent",
    "BuzzeasyHandler",
    "CallDetailsEvent",
    "EnreachEvent",
    "EnreachHandler",
    "Handler",
    "WebServicesHandler",
    "WfmEvent",
    "WfmHandler",
]
