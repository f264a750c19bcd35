"""Business logic, one module per area. Async, no HTTP, no SQL."""
