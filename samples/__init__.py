"""Deterministic generator of realistic Sysmon sample data in every input form."""
