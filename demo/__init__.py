"""Demo data for local runs: a business day of signed form deliveries."""
