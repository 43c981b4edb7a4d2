"""Bot commands in pull/merge request comments: ``/forgeflow test lint``, ``/forgeflow retest``..."""
