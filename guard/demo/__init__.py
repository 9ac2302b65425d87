"""The demo: an embedded PostgreSQL cluster, sample data and the story ``guard demo`` tells."""
