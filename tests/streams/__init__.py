"""Streams as a user sees them: ReadableStream, WritableStream, Blob and streamed
Request/Response bodies between two sessions, over a real WebSocket and in an HTTP batch.
After every test both sessions are back to their main entries and no stream task runs."""
