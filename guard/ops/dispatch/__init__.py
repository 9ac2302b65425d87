"""`guard watch`: delivers the outbox (guard.deliveries) to stdout, a Slack-compatible
webhook, email and Alertmanager, at least once, with per-channel throttling and retries.
See docs/alerts.md."""
