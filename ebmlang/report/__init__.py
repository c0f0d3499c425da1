"""What the user reads: the check and sample reports, and plots."""
