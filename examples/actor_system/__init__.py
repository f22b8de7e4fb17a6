"""A supervisor that spawns, restarts and stops actors handed out as capabilities."""
