"""Webhooks: merchants' and apps' endpoints, signed delivery from the outbox, attempts, replay."""
