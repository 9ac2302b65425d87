"""The schema engine: apply, verify and roll back Booking Guard's migrations and definitions."""
