"""Booking Guard: keeps an appointment-booking PostgreSQL database consistent."""

__version__ = "0.2.0"
