"""The one delivery engine: everything Herald sends goes through here.

Producers only write ledger rows (campaigns.models.Delivery, status queued) and kick the
engine: campaign runs (one-shot, recurring, drip and milestone steps: campaigns.pipeline),
single messages of the eSputnik v1 API and template test sends (campaigns.messages), and
workflow send steps (through campaigns.messages). Then, for every one of them:

- `policy`: the rules every send shares: batch size, attempts, the retry back-off
  (HERALD_RETRY_BASE * 2^(attempt-1), jitter, a cap), the claim lease, and the one place
  that classifies provider errors as transient or permanent.
- `content`: what a message says and who it is from (a send request's or a run's template
  version, or inline content), rendered once per delivery.
- `senders`: the sender interface (`send(batch) -> outcome per row`) and the registry keyed
  by channel; `email` is the built-in email sender (Django's email backends, SMTP with
  connection reuse, pipelining and DKIM), campaigns.sms holds the SMS gateway sender.
  Providers added later register themselves; the engine never imports them.
- `engine`: the one claim query (a lease, config.core.queues), the batch loop, and the one
  record step (every outcome of a chunk in one statement, through the ledger's transition
  table in campaigns.ledger). Campaign runs and send requests are its two scopes.
- `signals`: news the engine sends up (a run has nothing left to send, a run's failures
  passed its threshold); the campaign lifecycle listens. The engine never imports it.
"""
