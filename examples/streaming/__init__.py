"""Streams, typed: a log followed line by line, files uploaded and downloaded in chunks."""
