"""Retro-hunt: when an intel feed's load adds indicators, hunt them over the retained events
with the scheduled ``intel_match`` rules (:mod:`.hunt`); the queue and progress (:mod:`.pending`).
"""

from detectors.retro.hunt import HuntOptions, HuntResult, RetroHunter, event_indices, hunt_rules, marker
from detectors.retro.pending import Pending, Progress, pending_hunts, read_progress

__all__ = [
    "HuntOptions",
    "HuntResult",
    "Pending",
    "Progress",
    "RetroHunter",
    "event_indices",
    "hunt_rules",
    "marker",
    "pending_hunts",
    "read_progress",
]
