"""The dynamic segment filter language: its compiler (compiler.py), the SQL pieces it builds
from (expressions.py), what a stored filter refers to (references.py), and the marketer
page's row-by-row builder of filters (builder.py)."""
