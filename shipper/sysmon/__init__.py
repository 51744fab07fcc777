"""Pure Sysmon → ECS mapping (no I/O)."""
