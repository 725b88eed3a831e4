"""What integrators use: handler base classes and typed event catalogs, one package per provider."""

from handlers.base import Handler
from handlers.enreach import EnreachEvent, EnreachHandler

__all__ = ["EnreachEvent", "EnreachHandler", "Handler"]
