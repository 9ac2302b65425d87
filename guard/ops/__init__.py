"""Operator processes: what runs beside the application, never inside it."""
