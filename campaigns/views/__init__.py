"""Marketer pages of campaigns: the campaigns themselves (list, editor, detail, report) and
the message log (every delivery, one message's history, a template's test send). The public
endpoints reached from inside emails are in campaigns.public."""
