"""meldbot: sim."""
