"""The detectors' configuration file (``--config`` or ``SYSMON_DETECT_CONFIG``).

```yaml
sigma:
  paths: [sigma/rules/windows, /opt/sigma_all_rules.zip]  # relative to this file's folder
  status: [stable, test]            # default: stable, test, experimental
  level: [high, critical]
  tags: [attack.execution]
  ids: [5b0b75dc-0000-4000-8000-000000000000]
  attack_data: enterprise-attack.json   # an ATT&CK STIX bundle: technique names (else ids)
  exceptions:                       # exceptions for Sigma rules, as a built-in rule's
    - rules: {tags: [attack.t1059.001], levels: [high]}   # or ids: [...]; or rules: all
      allowlists: [{fields: [process.executable], feeds: [corp-software]}]
      values: [{field: host.name, values: [build01.corp.example]}]
```

Precedence for each setting: the command line, then the environment (``SYSMON_SIGMA_PATHS``,
``SYSMON_ATTACK_DATA``), then this file. Every error names the file and line; all of a file's
errors are reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from detectors.loader import RuleError, RuleErrors
from detectors.sigma.config import SigmaConfig, sigma_section
from detectors.sigma.options import CONFIG_ENV
from shipper.yamlnodes import NodeReader

__all__ = ["CONFIG_ENV", "DetectConfig", "load_config"]


@dataclass(frozen=True, slots=True)
class DetectConfig:
    source: str | None = None
    sigma: SigmaConfig = field(default_factory=SigmaConfig)


def _error(message: str, source: str, line: int | None) -> RuleError:
    return RuleError(message, path=source, line=1 if line is None else line)


def load_config(path: str | os.PathLike[str]) -> DetectConfig:
    """The file at ``path``; :class:`RuleErrors` with every problem (file:line) found."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleErrors([RuleError(f"cannot read: {exc}", path=source, line=0)]) from exc
    reader = NodeReader(source, _error, collect=True, typed=True)
    try:
        root = reader.compose(text)
    except RuleError as exc:
        raise RuleErrors([exc]) from exc
    if root is None:
        return DetectConfig(source)
    top = reader.section(root, "the configuration")
    top.check(("sigma",))
    sr = top.section("sigma")
    sigma = sigma_section(sr, Path(source).parent) if sr is not None else SigmaConfig()
    if reader.errors:
        raise RuleErrors(reader.errors)
    return DetectConfig(source, sigma)
