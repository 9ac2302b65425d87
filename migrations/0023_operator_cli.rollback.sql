-- Back to 0021: detection over the recent window or one call only.

DROP FUNCTION guard.detect_between(timestamptz, timestamptz);
