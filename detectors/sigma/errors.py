"""Why a Sigma rule does not run here. :class:`CannotFire` is raised while a rule is processed:
the rule is sound but our documents can never match it (a field we never map, a value our
mapping cannot hold). Problems in the rule itself are pySigma's own errors."""

from __future__ import annotations

from sigma.exceptions import SigmaError


class CannotFire(SigmaError):
    """The rule needs something our documents never carry; it is reported, never run."""
