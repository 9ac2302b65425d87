"""Tools for working on Booking Guard itself, not for running it: the generators behind
`make generated` (`python -m devtools.generate`), which derive stored files from sql/ and
migrations/ on a throwaway PostgreSQL."""
