"""What people and CI see: the step output, the live status line, the JSON report."""
