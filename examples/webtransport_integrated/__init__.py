"""One server for WebSocket, HTTP batch and WebTransport, and a page that picks WebTransport."""
