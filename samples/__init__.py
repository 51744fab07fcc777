"""Deterministic sample Sysmon data: one seeded, streamed multi-host day (benign background plus
one attack chain) written as event XML, winlogbeat JSON, NXLog JSON and rendered text, with a
``truth.json`` of what must alert and matching intel/allowlist files.

- :func:`samples.day.generate` — ``generate(events, seed, hosts=6, start=...)`` yields
  :class:`samples.model.SysmonEvent` in TimeCreated order (a generator; memory flat).
- :data:`samples.writers.FORMS` — form name → (file name, streaming writer).
- :class:`samples.truth.TruthCollector`, :func:`samples.truth.write_intel`.
- CLI: ``python -m samples generate --out DIR --events N [--seed S] [--hosts H]
  [--forms xml,winlogbeat,nxlog,text] [--start YYYY-MM-DD]``.
"""
