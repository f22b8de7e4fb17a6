"""A typed service over WebTransport (HTTP/3 on QUIC), with a development certificate."""
