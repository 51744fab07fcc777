"""Detectors: scheduled threat-intel and behavioural detections over Sysmon events."""
