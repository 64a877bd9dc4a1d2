"""The landing page's findings, each a declared test over the records."""
from __future__ import annotations
