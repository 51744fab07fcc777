"""Stream detection: the shipper checks each event against intel and rules as it ships it."""
