"""meldbot: reset_rig."""
