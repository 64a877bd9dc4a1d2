"""The comparative sentences of each paper's "What we found", each a declared test over its runs."""
from __future__ import annotations
