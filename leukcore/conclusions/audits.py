"""The audits' conclusions (the audits page), each a declared test over the audit records' seeds."""
from __future__ import annotations
