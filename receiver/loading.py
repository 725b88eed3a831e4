"""Loading integrators' handlers named in the config: `module:object` or `file.py:object`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from receiver.exceptions import ConfigError
from receiver.handling import EventHandler

__all__ = ["load_handler"]


def load_handler(spec: str) -> EventHandler:
    """Import `module:object` or `path/to/file.py:object`; a class is instantiated.

    Every failure, an exception raised while the module is imported included, is a
    `ConfigError` of one line (with the file and line where it was raised).
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"handler {spec!r} must look like module:object or file.py:object")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name = _module_of_file(target) if _is_file_path(target) else target
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(_import_failure(module_name, exc)) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no {attr!r}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"cannot create handler {spec}: {_raised(exc)}") from exc
    if not isinstance(obj, EventHandler):
        raise ConfigError(
            f"{spec} is not a handler: subclass handlers.EnreachHandler "
            "(or give an object with async handle() and failed())"
        )
    return obj


def _is_file_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _module_of_file(target: str) -> str:
    """Make `path/to/bridge.py` importable as `bridge`, its folder last on sys.path.

    Last, so that a file beside it cannot shadow a module the receiver uses; a module of the
    same name found first is refused rather than imported in its place.
    """
    path = Path(target).expanduser()
    if path.suffix != ".py":
        raise ConfigError(f"handler file {target} must be a .py file (or give module:object)")
    if not path.is_file():
        raise ConfigError(f"handler file {target} not found")
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"handler file {target}: {name!r} is not a module name; rename the file")
    path = path.resolve()
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    origin = found.origin if found is not None else None
    if origin is None or Path(origin).resolve() != path:
        taken = f" by {origin}" if origin else ""
        raise ConfigError(
            f"handler file {target}: the module name {name!r} is taken{taken}; rename the file"
        )
    return name


# Both packages ship side by side; a frame in them is where our code refused the user's.
_OWN_PACKAGES = tuple(
    str(Path(__file__).resolve().parent.parent / p) + os.sep for p in ("receiver", "handlers")
)


def _raised(exc: BaseException) -> str:
    """`file:line: Type: message` of the line that raised `exc` in the integrator's code.

    That is the innermost frame outside the import machinery and this project's packages
    (a `TypeError` from `Handler.on` points at the decorated function), else the innermost.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown(exc.filename)}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and frame.filename != __file__
    ]
    theirs = [f for f in frames if not f.filename.startswith(_OWN_PACKAGES)] or frames
    where = f"{_shown(theirs[-1].filename)}:{theirs[-1].lineno}: " if theirs else ""
    return f"{where}{type(exc).__name__}: {exc}"


def _shown(filename: str) -> str:
    """`filename` relative to the working directory when it is inside it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


def _import_failure(module_name: str, exc: Exception) -> str:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        return f"cannot import handler module {module_name!r}: {exc}"
    return f"cannot import handler module {module_name!r}: {_raised(exc)}"
