"""Privacy: PII masking of everything that is stored."""
