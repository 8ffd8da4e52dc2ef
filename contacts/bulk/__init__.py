"""The bulk import machinery beside the contact rules: the batch upsert (upsert.py) and its
writer (writer.py), COPY's text format (copy.py), pipeline mode (pipeline.py), the cycle
collector's pause (gc.py), and running an API import job (jobs.py).

Tuned for a million-row import: no per-row function layers are added here without
measuring (`python -m tests.benchmarks csv_import contacts_bulk`).
"""
