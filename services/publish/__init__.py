"""The publish service: the approval gate, supersede, withdrawal and the disclosure-protected
statistics (README.md)."""
