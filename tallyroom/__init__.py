"""Tallyroom: live election results over Kafka, Faust and Redis.

This folder holds the command and what every process shares: ``cli`` (the `tallyroom`
command), ``settings``, ``lifecycle`` (the one stop and retry helper), ``processes``
(background worker and sink), ``lag``, and the local stack for development (``stack``,
with the broker's Maven file and log settings in ``stack_files/`` as package data).

The distribution installs this one top-level package. The project's top-level
folders are its subpackages: ``schemas/`` is ``tallyroom.schemas``, and so are
``streams/``, ``producers/``, ``consumers/`` and ``bench/``. In a wheel,
pyproject's ``package-dir`` puts them inside ``tallyroom/``; in a source checkout
they sit beside this folder, so the package's search path includes the checkout's
root (only when that root is really this project's checkout: it holds
``pyproject.toml`` and ``streams/``).
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

_root = _Path(__file__).resolve().parent.parent
# The source checkout this package runs from, or None when it is installed from a wheel.
_is_checkout = (_root / "pyproject.toml").is_file() and (_root / "streams" / "__init__.py").is_file()
CHECKOUT: _Path | None = _root if _is_checkout else None
if CHECKOUT is not None:
    __path__.append(str(CHECKOUT))  # noqa: F821  (a package's own __path__)
