"""Stream detection in the shipper: rules matched in process, intel in memory, the detection stage."""
