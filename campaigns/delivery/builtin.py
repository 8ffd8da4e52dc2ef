"""The senders Herald ships with, registered for their channels: email through Django's
email backends (campaigns.delivery.email) and SMS through the configured gateway
(campaigns.sms). Provider packages register theirs the same way, from their app's ready()."""

from campaigns.delivery.email import EmailSender
from campaigns.delivery.senders import sender_register
from campaigns.sms import SMSSender

for _sender in (EmailSender, SMSSender):
    sender_register(_sender.channels, _sender)
