"""Stream detection: rules matched in the shipper as documents are shipped."""
