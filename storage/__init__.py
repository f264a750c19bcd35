"""Storage: one database abstraction over SQLite and PostgreSQL, migrations, and stores."""
