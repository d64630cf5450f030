"""meldbot: policy_server."""
