"""Marketer pages of the contacts app: contacts, custom fields and the unsubscribed list
(contacts.py), segments and their filter builder (segments.py), CSV import and export
(imports.py). Public endpoints are in contacts.public."""
