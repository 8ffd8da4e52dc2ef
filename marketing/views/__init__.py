"""Marketer pages of marketing: the workspace (dashboard, organisation settings, audit log),
event history and types, orders and the RFM grid, and the automation workflows."""
