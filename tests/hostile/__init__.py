"""Attacks on the server edge over real sockets: each test asserts what a user cares about."""
