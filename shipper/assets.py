"""Where the templates (``mappings/``) and Kibana saved objects (``kibana/``) are found.

In the source tree they live at the top level; ``shipper/_assets/`` holds symlinks to them, which
the wheel build resolves into real files, so an installed package finds them at the same place.
``SYSMON_MAPPINGS_DIR`` / ``SYSMON_KIBANA_DIR`` point elsewhere (your own edited copies).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

_ENV = {"mappings": "SYSMON_MAPPINGS_DIR", "kibana": "SYSMON_KIBANA_DIR"}


def asset_dir(name: Literal["mappings", "kibana"]) -> Path:
    env = os.environ.get(_ENV[name])
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "_assets" / name
