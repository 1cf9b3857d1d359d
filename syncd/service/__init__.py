"""The long-running service around the cycle: scheduler, control API, leader lock, systemd notify."""
