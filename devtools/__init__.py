"""Development tools: the local Elasticsearch node used by tests, demo and benchmarks."""
