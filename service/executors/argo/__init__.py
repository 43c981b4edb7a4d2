"""The ``argo`` executor: Workflow custom objects on Kubernetes through the official client
(``executor``), its API errors sorted for the seam (``errors``), listing and watching across
namespaces (``watch``) and job logs read from pods and archived (``logs``)."""
