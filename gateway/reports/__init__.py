"""Reports for the township: the monthly safety situation report, shift handover records
and the hazard ledger, as HTML (one template per document) and PDF (headless Chromium)."""
