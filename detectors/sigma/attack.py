"""ATT&CK tactics by the names Sigma tags use (``attack.execution``), and the techniques of
``attack.t1059.001`` tags. The 14 enterprise tactics are fixed; technique names are not
bundled (pySigma fetches them over the network), so a technique carries its id as its name
until a user-supplied STIX bundle names it (:mod:`detectors.sigma.attack_data`)."""

from __future__ import annotations

import re

from detectors.model import Technique, Threat

TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")


def threats(tags: list[str]) -> tuple[Threat, ...]:
    """``attack.*`` tags → threats: each tactic, the techniques listed under the first one (Sigma
    does not say which technique belongs to which tactic; alerts list both flat)."""
    tactics: list[tuple[str, str]] = []
    techniques: list[Technique] = []
    for tag in tags:
        namespace, _, name = tag.lower().partition(".")
        if namespace != "attack":
            continue
        key = name.replace("-", "_")
        if key in TACTICS and TACTICS[key] not in tactics:
            tactics.append(TACTICS[key])
        elif _TECHNIQUE.match(name):
            tid = name.upper()
            if all(t.id != tid for t in techniques):
                techniques.append(Technique(tid, tid))
    if not tactics and techniques:
        return (Threat("", "", tuple(techniques)),)
    return tuple(
        Threat(tid, tname, tuple(techniques) if i == 0 else ()) for i, (tid, tname) in enumerate(tactics)
    )
