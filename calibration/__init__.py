"""meldbot: calibration."""
