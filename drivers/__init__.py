"""meldbot: drivers."""
