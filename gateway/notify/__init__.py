"""Notification channels: one module per channel behind `base.Channel`, and the
dispatcher that drives the deliveries outbox with retries and backoff."""
