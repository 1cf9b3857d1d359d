"""What people read: the Chinese texts, notices and their channels, reports, workbooks and CLI output."""
