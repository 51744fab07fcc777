"""Threat-intel feeds and allowlists."""
