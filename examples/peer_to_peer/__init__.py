"""Two processes, each the client and the server of the other over one WebSocket."""
