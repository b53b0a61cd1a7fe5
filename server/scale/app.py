"""The engine application for a KubeRay ``RayService`` (or ``serve run``): import path
``underpaint.server.scale.app:build``, with the server's settings as the application's ``args``.

    applications:
      - name: underpaint          # the name the front attaches to (`underpaint serve --ray-attach`)
        import_path: underpaint.server.scale.app:build
        args: {models_dirs: [/models], ray_min_replicas: 1, ray_max_replicas: 8}

``args`` take the names of the server's settings (docs/ray.md); ``UNDERPAINT_*`` environment variables of the
pods apply too, as for ``underpaint serve``.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import build_config


def build(args: dict[str, Any]) -> Any:
    """Serve's application builder: the UnderpaintEngine deployment for these settings."""
    from .cluster import application

    return application(build_config(None, dict(args or {}), dict(os.environ)))
