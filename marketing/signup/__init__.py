"""Subscription forms: hosted pages and embeddable forms that subscribe people through the
same rule as the eSputnik v1 API's subscribe call (contacts.services.contact_subscribe)."""
