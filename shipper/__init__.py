"""Sysmon shipper: read Sysmon events in any form, map them to ECS, bulk-index them."""

__version__ = "0.1.0"
