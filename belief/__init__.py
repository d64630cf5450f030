"""meldbot: belief."""
