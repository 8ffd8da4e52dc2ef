"""Crash safety of the sending pipeline under faults (pytest marker `faults`).

Each test sends a campaign through the real pipeline (Celery worker processes on a private
redis-server, PostgreSQL, an SMTP sink that keeps every Message-ID), injects one kind of
fault at a random moment and checks that every recipient got the message once, copies only
for messages in flight and with the first copy's Message-ID, and that the ledger and the run
finished (tests/faults/harness.py):

- a worker killed with SIGKILL (main process and pool) once or twice per run and restarted,
  in HERALD_FAULT_RUNS runs;
- the broker killed and started again on the same port (its queued tasks are lost);
- PostgreSQL refusing the workers' connections for 10 s (a TCP proxy cuts and refuses them):
  no copies at all, senders record what they sent once it is back;
- the SMTP server answering 421 to every MAIL FROM for 5 s: no copies either.

Beat's recovery task runs in the test process on a faster clock (claim lease 15 s, stall 5 s)
and the retry base is 1 s, so a fault costs seconds, not the production minutes.

The normal suite runs 2 kill runs and one of each other fault, to NORMAL_RECIPIENTS (500)
recipients each. The full run, 10 kill runs and 20,000 recipients per run:

    HERALD_FAULT_RUNS=10 HERALD_FAULT_RECIPIENTS=20000 pytest -m faults -n 0 tests/faults

Each test prints its seed; HERALD_FAULT_SEED=<seed> replays the same fault moments.
"""
