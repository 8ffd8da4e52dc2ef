"""The providers Herald ships, one module per family; each registers its kinds with
campaigns.delivery.providers.provider_register when imported (integrations.apps)."""
