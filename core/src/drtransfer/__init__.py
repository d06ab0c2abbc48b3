"""deepracer-transfer: move DeepRacer-for-Cloud models out of the training machine, many at once.

Plugin authors import only :data:`hookimpl` from here; the hooks are documented in
:mod:`drtransfer.hookspecs` and ``docs/plugins.md``.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "drtransfer"
"""The one name of the distribution, the plugin manager, the entry-point group and the hook prefix."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
