"""The calculator example: arithmetic on capabilities, pipelined, with typed errors."""
