"""``detect:`` of the shipper configuration: stream detection as documents are shipped.

```yaml
detect:
  enabled: true                      # or --detect
  rules_dirs: [/etc/sysmon/rules]    # your own rules, besides the built-in ones (--detect-rules-dir)
  builtin: true                      # false: leave the built-in rules out
  config: /etc/sysmon/detect.yml     # the detectors' configuration: its Sigma rules (--detect-config)
  intel_poll: 30                     # seconds between looks at the intel feeds' manifests
  process_cache: 100000              # process-creation events kept for ancestry
```

Relative paths are read from the configuration file's folder. Nothing of ``detectors`` is
imported here: the stage is built only when detection is on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from shipper.config import Reader, ShipperConfig


@dataclass(frozen=True)
class DetectSettings:
    enabled: bool = False
    rules_dirs: tuple[str, ...] = ()
    builtin: bool = True
    config: str | None = None  # the detectors' configuration file (Sigma paths, exceptions)
    intel_poll: float = 30.0
    process_cache: int = 100_000

    def masked(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "rules_dirs": list(self.rules_dirs),
            "builtin": self.builtin,
            "config": self.config,
            "intel_poll": self.intel_poll,
            "process_cache": self.process_cache,
        }


def _relative(base: str, path: str) -> str:
    return path if Path(path).is_absolute() else str(Path(base).parent / path)


def detect_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    d = r.section(node, "detect").apply(
        {
            "enabled": lambda n: r.boolean(n, "detect.enabled"),
            "rules_dirs": lambda n: tuple(_relative(r.source, p) for p in r.strings(n, "detect.rules_dirs")),
            "builtin": lambda n: r.boolean(n, "detect.builtin"),
            "config": lambda n: _relative(r.source, r.string(n, "detect.config")),
            "intel_poll": lambda n: r.number(n, "detect.intel_poll"),
            "process_cache": lambda n: r.integer(n, "detect.process_cache", minimum=0),
        }
    )
    return {"detect": replace(cfg.detect, **d)}
