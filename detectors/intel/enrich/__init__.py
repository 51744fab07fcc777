"""Hash enrichment from external services (VirusTotal, MalwareBazaar, CIRCL hashlookup) as
intel sources: ``sysmon-detect intel enrich``. See :mod:`.run` for a run, :mod:`.services` for
the services, :mod:`.quota` for their budgets, :mod:`.cache` for verdicts and feeds."""
