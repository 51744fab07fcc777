"""Input readers: one per input form, all yielding RawEvent or ReadError."""
