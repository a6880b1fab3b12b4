"""Jobs and jobboards: units of work posted for conductors to claim and run."""
