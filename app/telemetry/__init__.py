"""What icehook tells its operators: metrics and log lines."""
