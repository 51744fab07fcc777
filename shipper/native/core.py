"""Loading the native core: once per process, handed the public suffix rules."""

from __future__ import annotations

import os
import sys
from functools import cache
from types import ModuleType


@cache
def native() -> ModuleType | None:
    """The initialised native module, or None when it is missing or turned off."""
    if os.environ.get("SYSMON_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import sysmon_native
    except ImportError:
        return None
    from shipper.sysmon.psl import rules

    try:
        suffixes, max_label = rules()
    except AttributeError:  # a publicsuffixlist release without those internals: stay exact
        return None
    sysmon_native.set_public_suffixes(suffixes, max_label)
    module: ModuleType = sysmon_native
    return module


def available() -> bool:
    return native() is not None


def threads_started() -> bool:
    """Whether the native core has started threads in this process (then ``fork`` is unsafe:
    the child would wait on threads it does not have)."""
    module = sys.modules.get("sysmon_native")
    return bool(module is not None and module.threads_started())
