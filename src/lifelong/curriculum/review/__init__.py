"""Review schedules: when to revisit old material in the replay memory."""
