"""Database access: connections, migrations, catalog snapshots and verification."""
