"""Telling forges what happened: which state each forge is shown for forgeflow's states
(``forge_states``), posting each job's state once through the outbox of job rows
(``reporter``), links to run pages (``links``) and what was reported for a commit (``queries``)."""
