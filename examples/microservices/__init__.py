"""Three services in three processes (gateway, auth, users) joined by capabilities."""
