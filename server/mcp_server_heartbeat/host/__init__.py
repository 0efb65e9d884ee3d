"""What this machine says: configuration, identity (host, boot, PID namespace),
the repository a path belongs to, project facts, git, the process probe."""
