"""A chat server: rooms as capabilities, a terminal client and a browser page."""
