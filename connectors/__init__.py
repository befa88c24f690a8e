"""Data sources and sinks (Google Sheets, JSON/HTTP, CSV/XLSX) and the guarded HTTP session."""
