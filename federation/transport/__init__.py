"""The server-server API as served by us: request authentication and the servlets."""
