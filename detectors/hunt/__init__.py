"""Hunting from the command line (``sysmon-detect hunt``): the analyst's hash workflow.

- :mod:`.stack` — ``hunt stack``: count events by one or more fields (composite aggregation,
  paged), with first/last seen, host count, and which allowlists / intel feeds know each value.
- :mod:`.process` — ``hunt process``: a process's ancestry, children and activity as one timeline.
- :mod:`.sightings` — ``hunt hash``: every sighting of a hash across hosts in time order, the
  first per host, and patient zero as the ``spread`` rule defines it.
- :mod:`.scope` (host / time / event-code filters), :mod:`.describe` (one line per event),
  :mod:`.output` (table, CSV, JSON lines) are shared; :mod:`.cli` is the click group.
"""
