"""NVIDIA GPU attestation evidence: parsing and verification."""
