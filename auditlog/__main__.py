"""``python -m auditlog`` runs the command-line interface."""

from auditlog.cli import main

main()
