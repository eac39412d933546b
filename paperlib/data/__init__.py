"""Data: source readers, the pocket corpus, the mixture plan, rendering and log-mel features."""
